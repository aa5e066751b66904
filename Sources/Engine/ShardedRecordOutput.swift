#if canImport(Glibc)
import Glibc
#endif
import Outputs
import Synchronization

/// Records from several shards into one `RecordWriter`. Each shard appends whole lines to a buffer
/// of its own and hands the buffer to the writer under one lock when it fills, after each batch of
/// packets the shard finishes (`flush(shard:)`, from the pipeline's `afterBatch`) and at the end: one
/// lock a buffer instead of one a record, which the two shards of `--threads 2` took in turns with
/// every record (the lock's cache line moving between the cores each time). A record's lines stay in
/// its shard's order; records of different shards interleave as before, by thread timing.
final class ShardedRecordOutput: @unchecked Sendable {
    let output: RecordWriter
    private let lock = Mutex(())
    /// One buffer and fill count per shard; each is touched only by its shard's thread (and by
    /// `flushAll` once every shard has finished).
    private let buffers: [UnsafeMutableRawPointer]
    private let counts: UnsafeMutablePointer<Int>
    /// Records in each shard's buffer.
    private let records: UnsafeMutablePointer<Int>
    static let capacity = 64 << 10

    init(output: RecordWriter, shards: Int) {
        self.output = output
        buffers = (0 ..< shards).map { _ in .allocate(byteCount: Self.capacity, alignment: 64) }
        counts = .allocate(capacity: shards)
        counts.initialize(repeating: 0, count: shards)
        records = .allocate(capacity: shards)
        records.initialize(repeating: 0, count: shards)
    }

    deinit {
        for b in buffers { b.deallocate() }
        counts.deallocate()
        records.deallocate()
    }

    /// What shard `shard`'s sink calls with each record (its newline included).
    func lines(for shard: Int) -> RecordLines {
        { [self] line in append(line, shard: shard) }
    }

    private func append(_ line: UnsafeRawBufferPointer, shard: Int) {
        guard let base = line.baseAddress, !line.isEmpty else { return }
        if counts[shard] + line.count > Self.capacity { flush(shard: shard) }
        if line.count > Self.capacity {
            lock.withLock { _ in output.write(line) }
            return
        }
        (buffers[shard] + counts[shard]).copyMemory(from: base, byteCount: line.count)
        counts[shard] += line.count
        records[shard] += 1
    }

    /// Hands shard `shard`'s buffered records to the writer (on that shard's thread).
    func flush(shard: Int) {
        guard counts[shard] > 0 else { return }
        let chunk = UnsafeRawBufferPointer(start: buffers[shard], count: counts[shard])
        lock.withLock { _ in output.write(lines: chunk, records: records[shard]) }
        counts[shard] = 0
        records[shard] = 0
    }

    /// Every shard's buffer, once the shards have stopped.
    func flushAll() {
        for shard in buffers.indices { flush(shard: shard) }
    }

    /// Runs `body` holding the writer's lock (to read its statistics while shards write).
    func withLock<T>(_ body: () -> T) -> T { lock.withLock { _ in body() } }
}

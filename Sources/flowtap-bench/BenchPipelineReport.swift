import PacketCore
import Outputs
import Analyzers

extension BenchPipelineCommand {
    /// The results of `bench pipeline` as a table or one JSON object.
    struct Report {
        var files: [String]
        /// Where the captures were read from (copies in memory, or in place and why).
        var reading: String
        var config: String
        var runs: Int
        var packets: Int
        var bytes: Int
        var rows: [Row]
        /// Median set-up time of the classification stage (config to Vectorscan databases), not in its time.
        var setupSeconds: Double?
        var threadsOption: Bool

        func row(_ key: String) -> Row? { rows.first { $0.key == key && $0.measured } }

        /// (label, ratio): a peer's median time over a FlowTap row's (above 1: FlowTap is faster).
        var ratios: [(key: String, label: String, value: Double)] {
            var out: [(String, String, Double)] = []
            for ours in rows where ours.stage == 6 && ours.measured {
                for peer in ["ndpiReader", "tcpflow"] {
                    if let theirs = row(peer) {
                        out.append(("\(ours.key)_vs_\(peer)", "\(ours.label) vs \(theirs.label)", theirs.median / ours.median))
                    }
                }
            }
            if let libpcap = row("libpcap") {
                for ours in rows where ours.stage != nil && ours.measured {
                    out.append(("\(ours.key)_vs_libpcap", "\(ours.label) vs \(libpcap.label)", libpcap.median / ours.median))
                }
            }
            return out
        }

        func packetsPerSecond(_ row: Row) -> Double { Double(packets * row.copies) / row.median }
        /// FlowTap's median CPU seconds over the floor's (below 1.5: within the issue's bound).
        func cpuOverFloor(_ ours: Row, _ floor: Row) -> Double {
            BenchLoops.median(ours.cpuSeconds) / max(BenchLoops.median(floor.cpuSeconds), 1e-9)
        }
        func gigabitsPerSecond(_ row: Row) -> Double { Double(bytes * row.copies) * 8 / row.median / 1e9 }

        /// 1 -> 2 threads: `--threads 1`'s median wall time over `--threads 2`'s; and the most two busy
        /// processes get from this machine: twice the work of one `--threads 1` run, done by two at once,
        /// against one run's time.
        var scaling: (speedUp: Double, ceiling: Double)? {
            guard let one = row("abstract_threads_1"), let two = row("abstract_threads_2"), let pair = row("abstract_pair") else { return nil }
            return (one.median / two.median, 2 * one.median / pair.median)
        }

        /// The ideal split: one `--threads 1` run on the whole capture over two at once on its halves (split
        /// by flow beforehand), the most sharding by flow can give here with this start-up and this split.
        var halvesSpeedUp: Double? {
            guard let one = row("abstract_threads_1"), let halves = row("abstract_halves"), halves.measured else { return nil }
            return one.median / halves.median
        }

        /// The most of the machine's CPU time the host may have taken during a round's two runs for the
        /// round to count as quiet.
        static let quietSteal = 0.01

        /// 1 -> 2 threads within each round where the host took at most `quietSteal` while the one- and the
        /// two-thread run ran (what "an otherwise idle machine" comes to on a shared VM): the rounds' speed-ups
        /// and the two-process ceilings of those rounds (nil where that round's ceiling was not quiet).
        var quietScaling: (speedUps: [Double], ceilings: [Double])? {
            guard let one = row("abstract_threads_1"), let two = row("abstract_threads_2"),
                  one.stealShares.count == one.seconds.count, two.stealShares.count == two.seconds.count else { return nil }
            let pair = row("abstract_pair")
            var speedUps: [Double] = [], ceilings: [Double] = []
            for i in one.seconds.indices where i < two.seconds.count
                && one.stealShares[i] <= Self.quietSteal && two.stealShares[i] <= Self.quietSteal {
                speedUps.append(one.seconds[i] / two.seconds[i])
                if let pair, i < pair.seconds.count, i < pair.stealShares.count, pair.stealShares[i] <= Self.quietSteal {
                    ceilings.append(2 * one.seconds[i] / pair.seconds[i])
                }
            }
            return (speedUps, ceilings)
        }

        func text() -> String {
            let libpcap = row("libpcap")
            var out = "\(files.joined(separator: ", ")): \(packets) packets, \(String(format3: Double(bytes) / 1e6)) MB captured; config \(config); \(runs == 1 ? "1 round" : "\(runs) rounds")\n"
            out += "captures \(reading)\n"
            out += "time: median (min, max) of the rounds; rates from the median; vs libpcap: libpcap's time over this one\n\n"
            out += "  " + "stage".padding(28) + "median ms".leftPadding(11) + "min ms".leftPadding(11) + "max ms".leftPadding(11)
                + "Mpps".leftPadding(9) + "Gbit/s".leftPadding(9) + "vs libpcap".leftPadding(12) + "peak RSS".leftPadding(12) + "CPU s".leftPadding(9) + "\n"
            for (index, row) in rows.enumerated() {
                if row.stage == nil && (index == 0 || rows[index - 1].stage != nil) { out += "  peers\n" }
                var line = "  " + row.label.padding(28)
                guard row.measured else {
                    out += line + "  " + (row.note ?? "not measured") + "\n"
                    continue
                }
                line += String(format3: row.median * 1000).leftPadding(11)
                line += String(format3: row.seconds.min()! * 1000).leftPadding(11)
                line += String(format3: row.seconds.max()! * 1000).leftPadding(11)
                line += String(format3: packetsPerSecond(row) / 1e6).leftPadding(9)
                line += String(format3: gigabitsPerSecond(row)).leftPadding(9)
                line += (row.stage != nil ? libpcap.map { String(format3: $0.median / row.median) + "x" } ?? "" : "").leftPadding(12)
                line += (row.peakRSSKiB.isEmpty ? "" : String(format3: Double(row.peakRSSKiB.max()!) / 1024) + " MiB" + (row.peakRSSExact ? "" : "*")).leftPadding(12)
                line += (row.cpuSeconds.isEmpty ? "" : String(format3: BenchLoops.median(row.cpuSeconds))).leftPadding(9)
                out += line + "\n"
            }
            out += "\n"
            if let setupSeconds { out += "classification set-up (config, Vectorscan compile), not in stage 5: \(String(format3: setupSeconds * 1000)) ms\n" }
            for row in rows where !row.counts.isEmpty {
                out += "\(row.label): " + row.counts.map { "\($0.0.replacingUnderscores) \($0.1)" }.joined(separator: ", ") + "\n"
            }
            for row in rows where row.measured && !row.cpuSeconds.isEmpty {
                out += "\(row.label): CPU \(String(format3: BenchLoops.median(row.cpuSeconds))) s (median); \(row.command ?? "")\n"
            }
            for row in rows where row.split != nil { out += "\(row.label), last round: \(row.split!)\n" }
            if let floor = row("floor") {
                for ours in rows where ours.stage == 6 && ours.measured && !ours.cpuSeconds.isEmpty {
                    out += "\(ours.label): CPU \(String(format3: cpuOverFloor(ours, floor)))x the floor's (cat: \(String(format3: BenchLoops.median(floor.cpuSeconds))) s)\n"
                }
            }
            if let scaling {
                out += "1 -> 2 threads: \(String(format3: scaling.speedUp))x in wall time; two --threads 1 runs at once: "
                    + "\(String(format3: scaling.ceiling))x one run's throughput (what two busy processes get from this machine); "
                    + "--threads 2 reaches \(String(format3: 100 * scaling.speedUp / scaling.ceiling))% of that\n"
            }
            if let ideal = halvesSpeedUp {
                out += "ideal split: two --threads 1 at once on the capture's halves (split by flow beforehand) finish "
                    + "\(String(format3: ideal))x faster than one run on the whole"
                if let scaling { out += "; --threads 2 reaches \(String(format3: 100 * scaling.speedUp / ideal))% of that" }
                out += "\n"
            }
            if let quiet = quietScaling {
                let limit = HostSteal.percent(Self.quietSteal)
                if quiet.speedUps.isEmpty {
                    out += "1 -> 2 threads in quiet rounds (host steal at most \(limit) during both runs): none of the \(runs) rounds was quiet\n"
                } else {
                    out += "1 -> 2 threads in quiet rounds (host steal at most \(limit) during both runs): \(quiet.speedUps.count) of \(runs), "
                        + "median \(String(format3: BenchLoops.median(quiet.speedUps)))x (\(String(format3: quiet.speedUps.min()!))-\(String(format3: quiet.speedUps.max()!)))"
                    if !quiet.ceilings.isEmpty {
                        out += "; two-process ceiling in \(quiet.ceilings.count) of them: median \(String(format3: BenchLoops.median(quiet.ceilings)))x"
                    }
                    out += "\n"
                }
            }
            let stolen = rows.filter { $0.measured && !$0.stealShares.isEmpty }
            if !stolen.isEmpty {
                out += "host steal while each row ran (CPU time the hypervisor gave to other guests, /proc/stat; wall times need it near 0):\n"
                for row in stolen { out += "  \(row.label.padding(28)) \(HostSteal.summary(row.stealShares)!)\n" }
            }
            if rows.contains(where: { !$0.peakRSSKiB.isEmpty && !$0.peakRSSExact }) {
                out += "* without GNU time (Debian: time) a child's peak RSS is at least this process's peak when it was spawned\n"
            }
            if !threadsOption { out += "flowtap abstract has no --threads option: end to end is its single-threaded run\n" }
            out += "\nratios (the peer's time over FlowTap's; above 1: FlowTap is faster)\n"
            for ratio in ratios where !ratio.key.hasSuffix("_vs_libpcap") {
                out += "  \(ratio.label.padding(48)) \(String(format3: ratio.value))x\n"
            }
            for row in rows where row.note != nil && row.measured == false { out += "note: \(row.note!)\n" }
            return out
        }

        func json() -> String {
            var w = JSONWriter()
            w.beginObject()
            w.beginArray("files")
            for file in files { w.string(nil, file) }
            w.endArray()
            w.string("reading", reading)
            w.string("config", config)
            w.number("runs", runs)
            w.number("packets", packets)
            w.number("bytes", bytes)
            w.bool("threads_option", threadsOption)
            if let setupSeconds { w.number("classification_setup_seconds", setupSeconds) }
            for (name, group): (StaticString, [Row]) in [("stages", rows.filter { $0.stage != nil }), ("peers", rows.filter { $0.stage == nil })] {
                w.beginArray(name)
                for row in group { write(row, to: &w) }
                w.endArray()
            }
            w.beginObject("ratios")
            for ratio in ratios {
                w.key(escaping: ratio.key)
                w.number(nil, ratio.value)
            }
            if let floor = row("floor") {
                for ours in rows where ours.stage == 6 && ours.measured && !ours.cpuSeconds.isEmpty {
                    w.key(escaping: "\(ours.key)_cpu_over_floor")
                    w.number(nil, cpuOverFloor(ours, floor))
                }
            }
            if let scaling {
                w.number("threads_2_speed_up", scaling.speedUp)
                w.number("two_process_ceiling", scaling.ceiling)
            }
            if let ideal = halvesSpeedUp { w.number("halves_speed_up", ideal) }
            if let quiet = quietScaling {
                w.number("quiet_rounds", quiet.speedUps.count)
                if !quiet.speedUps.isEmpty { w.number("threads_2_speed_up_quiet_rounds", BenchLoops.median(quiet.speedUps)) }
                if !quiet.ceilings.isEmpty { w.number("two_process_ceiling_quiet_rounds", BenchLoops.median(quiet.ceilings)) }
            }
            w.endObject()
            w.endObject()
            return w.line
        }

        func write(_ row: Row, to w: inout JSONWriter) {
            w.beginObject()
            w.string("name", row.key)
            w.string("label", row.label)
            if let stage = row.stage { w.number("stage", stage) }
            if let command = row.command { w.string("command", command) }
            w.bool("measured", row.measured)
            if let note = row.note { w.string("note", note) }
            if row.measured {
                if let packets = row.packets { w.number("packets", packets) } else { w.null("packets") }
                w.number("seconds_median", row.median)
                w.number("seconds_min", row.seconds.min()!)
                w.number("seconds_max", row.seconds.max()!)
                w.number("packets_per_second", packetsPerSecond(row))
                w.number("gbit_per_second", gigabitsPerSecond(row))
                if let peak = row.peakRSSKiB.max() {
                    w.number("peak_rss_kib", peak)
                    w.bool("peak_rss_exact", row.peakRSSExact)
                }
                if !row.cpuSeconds.isEmpty { w.number("cpu_seconds_median", BenchLoops.median(row.cpuSeconds)) }
                for (name, value) in row.counts {
                    w.key(escaping: name)
                    w.number(nil, value)
                }
                if let split = row.split { w.string("thread_split", split) }
                if !row.stealShares.isEmpty {
                    w.number("steal_share_median", BenchLoops.median(row.stealShares))
                    w.number("steal_share_max", row.stealShares.max()!)
                }
            }
            w.endObject()
        }
    }
}

extension String {
    func leftPadding(_ width: Int) -> String {
        count >= width ? " " + self : String(repeating: " ", count: width - count) + self
    }

    var replacingUnderscores: String { String(map { $0 == "_" ? " " : $0 }) }
}

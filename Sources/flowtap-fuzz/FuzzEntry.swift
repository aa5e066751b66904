import PacketCore
#if canImport(Glibc)
import Glibc
#endif

/// libFuzzer's entry point: `FLOWTAP_FUZZ_TARGET` names the target (scripts/fuzz.sh sets it).
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOne(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    FuzzSelection.target.run(UnsafeRawBufferPointer(start: data, count: size))
    return 0
}

enum FuzzSelection {
    nonisolated(unsafe) static let target: FuzzTarget = {
        let name = getenv("FLOWTAP_FUZZ_TARGET").map { String(cString: $0) } ?? ""
        guard let target = FuzzTarget(rawValue: name) else {
            let names = FuzzTarget.allCases.map(\.rawValue).joined(separator: ", ")
            writeStandardError("flowtap-fuzz: set FLOWTAP_FUZZ_TARGET to one of: \(names)\n")
            exit(2)
        }
        return target
    }()
}

#if !FUZZING
/// Without libFuzzer (an ordinary build): replays files through a target, so every finding kept in
/// Tests/Fuzz/<target>/ runs as a regression test on every machine.
///
///   flowtap-fuzz TARGET FILE…
@main
struct FuzzReplay {
    static func main() {
        let arguments = CommandLine.arguments.dropFirst()
        guard let name = arguments.first, let target = FuzzTarget(rawValue: name) else {
            let names = FuzzTarget.allCases.map(\.rawValue).joined(separator: ", ")
            writeStandardError("usage: flowtap-fuzz TARGET FILE…  (targets: \(names)); built with scripts/fuzz.sh it is a libFuzzer binary\n")
            exit(2)
        }
        var replayed = 0
        for path in arguments.dropFirst() {
            guard let file = fopen(path, "rb") else {
                writeStandardError("flowtap-fuzz: cannot open \(path)\n")
                exit(1)
            }
            var bytes: [UInt8] = []
            var chunk = [UInt8](repeating: 0, count: 65536)
            while true {
                let n = fread(&chunk, 1, chunk.count, file)
                if n <= 0 { break }
                bytes += chunk[0 ..< n]
            }
            fclose(file)
            bytes.withUnsafeBytes { target.run($0) }
            replayed += 1
        }
        print("flowtap-fuzz \(name): \(replayed) inputs replayed, no trap")
    }
}
#endif

#if FUZZING
/// libFuzzer's driver, entered from the executable's main (SwiftPM links an executable's entry under
/// this name), with `LLVMFuzzerTestOneInput` as the target.
@_silgen_name("LLVMFuzzerRunDriver")
func runFuzzerDriver(_ argc: UnsafeMutablePointer<CInt>, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>,
                     _ callback: @convention(c) (UnsafePointer<UInt8>, Int) -> CInt) -> CInt

@_cdecl("flowtap_fuzz_main")
func fuzzMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    var count = argc
    var arguments = argv
    return runFuzzerDriver(&count, &arguments) { data, size in fuzzOne(data, size) }
}
#endif

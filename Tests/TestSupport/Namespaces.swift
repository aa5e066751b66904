import Foundation

/// Processes in network namespaces the tests build (`ip netns exec`).
public enum Namespaces {
    /// Starts `arguments` in `namespace`; standard output to /dev/null, standard error to `errors`.
    public static func start(ip: String, _ namespace: String, _ arguments: [String], errors: String = "/dev/null") throws -> Process {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: ip)
        p.arguments = ["netns", "exec", namespace] + arguments
        p.standardOutput = FileHandle(forWritingAtPath: "/dev/null")
        p.standardError = Corpus.outputHandle(errors)
        try p.run()
        return p
    }
}

import ArgumentParser
import PacketCore
import SFTapConfig
#if canImport(Glibc)
import Glibc
#endif

extension SFTapSettings {
    /// Loads a config for a subcommand (`home` defaults to the working directory); an error is printed as
    /// "flowtap COMMAND: …" and exits 1, each ignored section is printed as a warning.
    static func load(path: String, command: String, lenient: Bool = false) throws -> SFTapSettings {
        let settings: SFTapSettings
        do {
            var cwd = [CChar](repeating: 0, count: 4096)
            settings = try SFTapSettings.load(path: path, currentDirectory: getcwd(&cwd, cwd.count).map { String(cString: $0) } ?? ".", lenient: lenient)
        } catch {
            writeStandardError("flowtap \(command): \(error)\n")
            throw ExitCode(1)
        }
        for (section, line, why) in settings.ignored {
            writeStandardError("flowtap \(command): warning: \(path):\(line): section '\(section)': \(why)\n")
        }
        return settings
    }
}

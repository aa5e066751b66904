import ArgumentParser

struct BenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Measure FlowTap against peers on the same input in the same run.",
        subcommands: [BenchReadCommand.self, BenchFloodCommand.self, BenchHTTPCommand.self, BenchPipelineCommand.self]
    )
}

import PacketCore
import Abstraction
import ArgumentParser
import Engine
import SFTapConfig

/// What the flood's flows are handed to.
enum FloodSink: String, ExpressibleByArgument, CaseIterable {
    /// Counts events only: the engine's own per-flow state.
    case null
    /// `flowtap abstract`'s sink (Abstractor, default TCP and UDP rules) with discarding outputs: the
    /// per-flow state an abstract run keeps (`DiscardingOutputs` of bench pipeline).
    case abstract

    static func abstractor() throws -> Abstractor<DiscardingOutputs> {
        let yaml = """
        tcp_default:
          proto: TCP
          if: default
        udp_default:
          proto: UDP
          if: default
        """
        let settings = try SFTapSettings(SFTapConfig.parse(yaml, file: "bench-flood"), currentDirectory: "/tmp")
        return try Abstractor(settings: settings, outputs: DiscardingOutputs())
    }
}

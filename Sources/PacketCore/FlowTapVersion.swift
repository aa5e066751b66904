/// FlowTap's version: `--version`, the Debian package, and `flowtap_build_info`.
public enum FlowTapVersion {
    public static let current = "0.2.0"
}

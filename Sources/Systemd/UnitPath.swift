import CSystemd
import Glibc

/// systemd's object paths for units: `/org/freedesktop/systemd1/unit/web_2eservice`.
enum UnitPath {
    static let prefix = "/org/freedesktop/systemd1/unit"

    /// The object path of a unit, by systemd's escaping rules.
    static func path(ofUnit name: String) -> String {
        var out: UnsafeMutablePointer<CChar>? = nil
        guard sd_bus_path_encode(prefix, name, &out) >= 0, let out else { return prefix + "/" + name }
        defer { free(out) }
        return String(cString: out)
    }

    /// The unit name of an object path under the unit prefix, or nil for other paths.
    static func unitName(fromPath path: String) -> String? {
        var out: UnsafeMutablePointer<CChar>? = nil
        guard sd_bus_path_decode(path, prefix, &out) > 0, let out else { return nil }
        defer { free(out) }
        return String(cString: out)
    }
}

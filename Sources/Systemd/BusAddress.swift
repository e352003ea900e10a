/// Where the system bus is.
public enum BusAddress: Sendable, Equatable, CustomStringConvertible {
    /// The system bus, as `sd_bus_open_system` finds it: `DBUS_SYSTEM_BUS_ADDRESS`, or the
    /// default socket `/run/dbus/system_bus_socket`.
    case system
    /// An explicit D-Bus address, e.g. `unix:path=/tmp/host/run/dbus/system_bus_socket`.
    case address(String)

    public var description: String {
        switch self {
        case .system:
            if let env = getenv("DBUS_SYSTEM_BUS_ADDRESS") { return String(cString: env) }
            return "unix:path=/run/dbus/system_bus_socket"
        case .address(let address):
            return address
        }
    }
}

import Glibc

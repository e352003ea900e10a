/// Where Medic's files are when nothing says otherwise: defined once, for medicd's config, the
/// CLI's options and the unit file's directories (`StateDirectory=medic`, `RuntimeDirectory=medic`).
public enum DefaultPaths {
    /// The config file.
    public static let config = "/etc/medic/medic.yaml"
    /// The playbook directory.
    public static let playbooks = "/etc/medic/playbooks"
    /// The state directory: the audit log, and the sealing key.
    public static let state = "/var/lib/medic"
    /// The runtime directory: the control and heartbeat sockets.
    public static let runtime = "/run/medic"
    /// The control socket.
    public static let controlSocket = runtime + "/control.sock"
}

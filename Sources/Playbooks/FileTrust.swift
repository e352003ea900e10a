import Glibc

/// sshd's StrictModes for Medic's configuration: medicd runs as root and runs what playbooks
/// say, so a playbook or the config is read only from a file owned by root and not writable by
/// group or others, in a directory with the same property.
public enum FileTrust {
    /// Why `path` may not be trusted, or nil if it may.
    public static func problem(_ path: String) -> String? {
        var info = stat()
        guard stat(path, &info) == 0 else { return "cannot stat \(path): \(String(cString: strerror(errno)))" }
        let mode = String(info.st_mode & 0o7777, radix: 8)
        if info.st_uid != 0 {
            return "\(path) is owned by \(owner(info.st_uid)), not root; medicd reads its configuration only from files and directories owned by root (chown root \(path))"
        }
        if info.st_mode & 0o022 != 0 {
            return "\(path) is writable by group or others (mode 0\(mode)); medicd reads its configuration only from files and directories that only root can write (chmod go-w \(path))"
        }
        return nil
    }

    private static func owner(_ uid: uid_t) -> String {
        guard let entry = getpwuid(uid), let name = entry.pointee.pw_name else { return "uid \(uid)" }
        return "uid \(uid) (\(String(cString: name)))"
    }
}

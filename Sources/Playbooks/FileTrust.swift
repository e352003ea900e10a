import Glibc
import Posix

/// sshd's StrictModes for Medic's configuration: medicd runs as root and runs what playbooks
/// say, so a playbook or the config is read only from a file owned by root and not writable by
/// group or others, in a directory with the same property.
public enum FileTrust {
    /// Why `path` may not be trusted, or nil if it may. A symbolic link is judged by what it
    /// points to — the file actually read and the directory it is in — as sshd does.
    public static func problem(_ path: String) -> String? {
        var link = stat()
        if lstat(path, &link) == 0, link.st_mode & S_IFMT == S_IFLNK {
            guard let resolved = realpath(path, nil) else { return "cannot resolve the symbolic link \(path): \(PosixError.reason())" }
            defer { free(resolved) }
            let target = String(cString: resolved)
            let directory = target.lastIndex(of: "/").map { target[..<$0].isEmpty ? "/" : String(target[..<$0]) } ?? "."
            for checked in [directory, target] {
                if let problem = problem(checked) { return "\(path) is a symbolic link to \(target): \(problem)" }
            }
            return nil
        }
        var info = stat()
        guard stat(path, &info) == 0 else { return "cannot stat \(path): \(PosixError.reason())" }
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

/// What kind of file a mode says, for refusals.
enum FileKind {
    /// `a directory`, `a FIFO (named pipe)`, … for anything that is not a regular file.
    static func nonRegular(_ mode: mode_t) -> String? {
        switch mode & S_IFMT {
        case S_IFREG: nil
        case S_IFDIR: "a directory"
        case S_IFIFO: "a FIFO (named pipe)"
        case S_IFSOCK: "a socket"
        case S_IFCHR: "a character device"
        case S_IFBLK: "a block device"
        default: "not a regular file"
        }
    }
}

import Foundation
import Glibc

/// A file of secrets (a password, a token, a TLS key): read only when owned by root and
/// readable by nobody else, like an ssh key.
enum SecretFile {
    static func read(_ path: String, what: String) throws -> String {
        var info = stat()
        guard stat(path, &info) == 0 else { throw SecretFileError(description: "\(what) \(path): cannot read it: \(String(cString: strerror(errno)))") }
        guard info.st_uid == 0, info.st_mode & 0o077 == 0 else {
            throw SecretFileError(description: "\(what) \(path) must be owned by root and readable by nobody else (mode 0600), for it holds a secret; it is mode 0\(String(info.st_mode & 0o777, radix: 8)), owner uid \(info.st_uid)")
        }
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { throw SecretFileError(description: "\(what) \(path): cannot read it") }
        return text.trimmingCharacters(in: .whitespacesAndNewlines)
    }
}

struct SecretFileError: Error, CustomStringConvertible {
    var description: String
}

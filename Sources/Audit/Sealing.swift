import Crypto
import Posix
import Foundation
import Glibc

/// Forward-secure sealing of the audit chain, as journald seals its files: each record's hash is
/// authenticated (HMAC-SHA256) with the key of its epoch, and the key evolves one way at the end
/// of every epoch (`next = SHA-256("medic-seal-evolve" ‖ key)`), the old one forgotten. Someone
/// who becomes root later holds only the current key, and cannot compute the keys of earlier
/// epochs, so cannot re-seal records written before: only the verification key kept offline
/// (epoch 0's key, with the start and length of the epochs) can check every seal.
public struct SealingKey: Sendable, Equatable {
    /// The key of epoch `epoch`.
    public var key: [UInt8]
    public var epoch: Int64
    /// When epoch 0 began (seconds since the Unix epoch), and how long each epoch lasts.
    public var start: Int64
    public var interval: Int64

    public init(key: [UInt8], epoch: Int64 = 0, start: Int64, interval: Int64) {
        self.key = key
        self.epoch = epoch
        self.start = start
        self.interval = interval
    }

    /// A new key for epoch 0 starting now, from the kernel's random source.
    public static func generate(interval: Int64, now: Int64) -> SealingKey {
        var generator = SystemRandomNumberGenerator()
        return SealingKey(key: (0..<32).map { _ in UInt8.random(in: .min ... .max, using: &generator) }, start: now, interval: interval)
    }

    /// The verification key as `medic audit setup-keys` prints it: `HEX/START/INTERVAL`.
    public var text: String { "\(key.hexString)/\(start)/\(interval)" }

    /// Reads a verification key (`HEX/START/INTERVAL`, epoch 0); nil if it is not one.
    public init?(text: String) {
        let parts = text.trimmingCharacters(in: .whitespacesAndNewlines).split(separator: "/")
        guard parts.count == 3, let key = [UInt8](hex: String(parts[0])), key.count == 32,
              let start = Int64(parts[1]), let interval = Int64(parts[2]), interval > 0 else { return nil }
        self.init(key: key, start: start, interval: interval)
    }

    /// The epoch that wall-clock time `wallMicroseconds` falls in (0 before the start).
    public func epoch(atWall wallMicroseconds: Int64) -> Int64 {
        max(0, (wallMicroseconds / 1_000_000 - start) / interval)
    }

    /// This key moved forward to `target` (no earlier than its own epoch); the keys in between
    /// are not kept.
    public func evolved(to target: Int64) -> SealingKey {
        var next = self
        while next.epoch < target {
            next.key = Array(SHA256.hash(data: Array("medic-seal-evolve".utf8) + next.key))
            next.epoch += 1
        }
        return next
    }

    /// The seal of a record's hash: `EPOCH:HMAC`.
    public func seal(_ hash: String) -> String {
        let code = HMAC<SHA256>.authenticationCode(for: Array(hash.utf8), using: SymmetricKey(data: key))
        return "\(epoch):\(code.hexString)"
    }
}

/// medicd's side of sealing: the current epoch's key, in `STATE/seal.key` (mode 0600), evolved
/// and rewritten as epochs pass. It is read when it appears or is replaced (`medic audit
/// setup-keys`), so sealing starts without a restart; without it, records are not sealed.
final class RecordSealer: @unchecked Sendable {
    /// The key file's name inside the state directory.
    static let fileName = "seal.key"

    private let path: String
    private let lock = NSLock()
    private var current: SealingKey?
    /// The inode of the key file as last read or written, to notice a new one.
    private var inode: ino_t = 0

    init(stateDirectory: String) { path = stateDirectory + "/" + Self.fileName }

    /// Seals a batch of records (their hashes and wall-clock times, in order) with the key of
    /// the current epoch, evolving (and forgetting) the key first when an epoch has passed; ""
    /// for each without a key. The key file is looked at once a batch.
    func seal(_ records: [(hash: String, wallMicroseconds: Int64)]) -> [String] {
        lock.withLock {
            refresh()
            return records.map { record in
                guard var key = current else { return "" }
                let epoch = key.epoch(atWall: record.wallMicroseconds)
                if epoch > key.epoch {
                    key = key.evolved(to: epoch)
                    current = key
                    try? Self.write(key, to: path)
                    inode = Self.inode(path) ?? 0
                }
                return key.seal(record.hash)
            }
        }
    }

    /// Reads the key file if it appeared or was replaced since it was last read.
    private func refresh() {
        guard let now = Self.inode(path) else {
            current = nil
            return
        }
        guard now != inode else { return }
        inode = now
        current = try? Self.read(path)
    }

    private static func inode(_ path: String) -> ino_t? {
        var info = stat()
        return stat(path, &info) == 0 ? info.st_ino : nil
    }

    /// Installs `key` as the state directory's sealing key, for `medic audit setup-keys`;
    /// refuses to replace one unless `replace`.
    static func install(_ key: SealingKey, stateDirectory: String, replace: Bool) throws {
        let path = stateDirectory + "/" + fileName
        if !replace, FileManager.default.fileExists(atPath: path) { throw SealingError.exists(path) }
        try write(key, to: path)
    }

    /// The key file: one line, `HEX/START/INTERVAL/EPOCH`.
    static func read(_ path: String) throws -> SealingKey {
        let text = try String(contentsOfFile: path, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
        guard let slash = text.lastIndex(of: "/"), let epoch = Int64(text[text.index(after: slash)...]),
              var key = SealingKey(text: String(text[..<slash]))
        else { throw SealingError.unreadable(path) }
        key.epoch = epoch
        return key
    }

    /// Writes the key file durably and atomically (a new file renamed over the old one), so a
    /// crash leaves either the old key or the new one, never half of one.
    static func write(_ key: SealingKey, to path: String) throws {
        let temporary = path + ".new"
        let fd = open(temporary, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0o600)
        guard fd >= 0 else { throw SealingError.unwritable(path, PosixError.reason()) }
        let bytes = Array("\(key.text)/\(key.epoch)\n".utf8)
        let written = Glibc.write(fd, bytes, bytes.count)
        let synced = fsync(fd)
        close(fd)
        guard written == bytes.count, synced == 0, rename(temporary, path) == 0 else {
            throw SealingError.unwritable(path, PosixError.reason())
        }
        let directory = open((path as NSString).deletingLastPathComponent, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if directory >= 0 {
            fsync(directory)
            close(directory)
        }
    }
}

/// What went wrong with a sealing key file.
public enum SealingError: Error, CustomStringConvertible {
    case unreadable(String)
    case unwritable(String, String)
    case exists(String)

    public var description: String {
        switch self {
        case .unreadable(let path): "\(path) is not a sealing key file (HEX/START/INTERVAL/EPOCH)"
        case .unwritable(let path, let why): "cannot write \(path): \(why)"
        case .exists(let path):
            "\(path) already holds a sealing key; --force replaces it (records sealed so far stay verifiable only with the old verification key)"
        }
    }
}

extension [UInt8] {
    /// Bytes from hexadecimal; nil if `hex` is not an even number of hex digits.
    init?(hex: String) {
        let digits = Array(hex.utf8)
        guard digits.count % 2 == 0 else { return nil }
        var bytes: [UInt8] = []
        bytes.reserveCapacity(digits.count / 2)
        var index = 0
        while index < digits.count {
            guard let byte = UInt8(String(decoding: digits[index..<index + 2], as: UTF8.self), radix: 16) else { return nil }
            bytes.append(byte)
            index += 2
        }
        self = bytes
    }
}

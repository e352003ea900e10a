import Foundation

/// A value the fleet keeps in etcd as JSON (sorted keys, so that equal values are equal bytes).
protocol StoredJSON: Codable {}

extension StoredJSON {
    var bytes: [UInt8] {
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        return Array((try? encoder.encode(self)) ?? Data())
    }

    /// The value, or nil if the bytes are not one (a key written by something else).
    init?(bytes: [UInt8]) {
        guard let decoded = try? JSONDecoder().decode(Self.self, from: Data(bytes)) else { return nil }
        self = decoded
    }
}

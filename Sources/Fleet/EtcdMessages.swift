import Foundation

/// etcd v3's JSON gateway as it answers (measured on 3.4 and 3.5): keys and values in base64,
/// 64-bit integers as strings, and fields at their default (false, zero, empty) left out.
enum EtcdJSON {
    struct Header: Decodable {
        var revision: String?
    }

    struct KeyValue: Decodable {
        var key: String?
        var value: String?
        var create_revision: String?
        var mod_revision: String?
        var lease: String?

        var stored: StoredKey {
            StoredKey(
                key: String(decoding: Data(base64Encoded: key ?? "") ?? Data(), as: UTF8.self),
                value: Array(Data(base64Encoded: value ?? "") ?? Data()),
                createRevision: Int64(create_revision ?? "0") ?? 0, modRevision: Int64(mod_revision ?? "0") ?? 0,
                lease: Int64(lease ?? "0") ?? 0)
        }
    }

    struct Range: Decodable {
        var header: Header?
        var kvs: [KeyValue]?
    }

    struct Put: Decodable {
        var header: Header?
    }

    struct Delete: Decodable {
        var deleted: String?
    }

    struct Grant: Decodable {
        var ID: String?
        var TTL: String?
        var error: String?
    }

    struct KeepAlive: Decodable {
        struct Result: Decodable {
            var ID: String?
            var TTL: String?
        }
        var result: Result?
    }

    struct Txn: Decodable {
        struct Response: Decodable {
            var response_range: Range?
        }
        var succeeded: Bool?
        var responses: [Response]?
    }

    struct Watch: Decodable {
        struct Result: Decodable {
            struct Event: Decodable {
                var type: String?
                var kv: KeyValue?
            }
            var header: Header?
            var created: Bool?
            var canceled: Bool?
            var cancel_reason: String?
            var compact_revision: String?
            var events: [Event]?
        }
        var result: Result?
        var error: Failure?
    }

    struct Token: Decodable {
        var token: String?
    }

    /// What the gateway answers instead, on an error.
    struct Failure: Decodable {
        var error: String?
        var message: String?
        var code: Int?
    }

    static func base64(_ text: String) -> String { Data(text.utf8).base64EncodedString() }
    static func base64(_ bytes: [UInt8]) -> String { Data(bytes).base64EncodedString() }

    /// The `range_end` that makes a request cover every key starting with `prefix`.
    static func prefixEnd(_ prefix: String) -> String {
        var bytes = Array(prefix.utf8)
        while let last = bytes.last {
            if last < 0xff {
                bytes[bytes.count - 1] = last + 1
                return Data(bytes).base64EncodedString()
            }
            bytes.removeLast()
        }
        return Data([0]).base64EncodedString()
    }

    /// A key (and its prefix range) as a request names it.
    static func keyRange(_ key: String, prefix: Bool) -> [String: Any] {
        prefix ? ["key": base64(key), "range_end": prefixEnd(key)] : ["key": base64(key)]
    }
}

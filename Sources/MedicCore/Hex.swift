extension Sequence<UInt8> {
    /// The bytes in lower-case hexadecimal, two digits each (what `%02x` gives, without the
    /// formatting machinery: the audit chain writes one for every record).
    public var hexString: String {
        let digits: [UInt8] = Array("0123456789abcdef".utf8)
        var text: [UInt8] = []
        text.reserveCapacity(underestimatedCount * 2)
        for byte in self {
            text.append(digits[Int(byte >> 4)])
            text.append(digits[Int(byte & 0x0F)])
        }
        return String(decoding: text, as: UTF8.self)
    }
}

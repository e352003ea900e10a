import Foundation

func scratchDirectory() -> String {
    let dir = NSTemporaryDirectory() + "medic-audit-\(UUID().uuidString)"
    try? FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    return dir
}

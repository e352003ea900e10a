import Glibc

/// medicd's limit on open descriptors. systemd starts services with a soft limit of 1,024 and a
/// hard one far above; medicd raises its soft limit to the hard one (at most 65,536), so that
/// what detects and heals keeps descriptors in reserve beyond everything its bounded listeners
/// can hold. (medicd waits with epoll and poll, never select(), so a high limit is safe.)
enum DescriptorLimit {
    /// Raises the soft limit; returns the limit now in force.
    @discardableResult
    static func raise() -> UInt {
        var limit = rlimit()
        guard getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0 else { return 0 }
        let wanted = min(limit.rlim_max, 65_536)
        if limit.rlim_cur < wanted {
            limit.rlim_cur = wanted
            _ = setrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit)
            _ = getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit)
        }
        return UInt(limit.rlim_cur)
    }
}

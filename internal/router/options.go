package router

// DefaultCacheSize is the number of event names whose subscribers an [Index]
// remembers unless [WithCacheSize] says otherwise.
const DefaultCacheSize = 4096

// MaxCachedEventLen is the length in bytes of the longest event name whose
// answer [Index.Match] caches. Longer names are matched afresh on every call
// (still without allocating once their answer has been seen). This bounds
// the memory of the names in the cache, and of the lock-free copy of it, at
// about 2 × cache size × (MaxCachedEventLen + 64) bytes; answers come on
// top, shared between names, at most cache size of them.
const MaxCachedEventLen = 256

// Option configures an [Index].
type Option func(*options)

type options struct {
	cacheSize int
	onChange  func()
}

// WithOnChange makes the Index call f after each Add, Remove or RemoveAll
// that changed a subscriber's patterns, outside its lock, from the
// caller's goroutine. f must not block.
func WithOnChange(f func()) Option {
	return func(o *options) { o.onChange = f }
}

// WithCacheSize bounds the number of event names whose answer [Index.Match]
// caches. The default is [DefaultCacheSize]; n <= 0 disables the cache, so
// every Match runs the patterns and allocates its answer.
func WithCacheSize(n int) Option {
	return func(o *options) { o.cacheSize = max(n, 0) }
}

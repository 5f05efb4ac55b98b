package config

// CacheSizes reports how many compiled path expressions and regular
// expressions the package keeps cached (each cache stops growing at its
// limit), for the stats registry.
func CacheSizes() (paths, regexps int64) {
	return min(pathsCount.Load(), maxCachedPaths), min(regexpsCount.Load(), maxCachedRegexps)
}

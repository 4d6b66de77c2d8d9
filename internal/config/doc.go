// Package config loads and strictly validates wgbird's TOML configuration,
// reporting every problem as an *Error that names the file, line and key.
package config

// Package config loads and strictly validates wgbird's TOML configuration,
// reporting every problem as an *Error that names the file, line and key.
//
// go-toml decodes the file into the document struct (decode.go), whose
// toml tags are the schema: it refuses unknown keys, and checkTypes names
// a value of the wrong type. validate.go then checks each value and the
// rules between them and fills in the defaults. A new key is a field with
// its tag in document (a duration is of type duration), a field in the
// Config type, and its rule in validate.go.
package config

package config

// ErrorAt returns a configuration error about key, spelled as Error.Key
// spells it ("control.group", "service[1].protocols[2]"), in the file at
// path: located at the key's line, read again from the file (0 when it
// cannot be read or has no such key). It is for what only the running
// system can tell after Load, such as a group or a BIRD protocol that does
// not exist; the caller exits 2 for it as for any *Error.
func ErrorAt(path, key, msg string) *Error {
	e := &Error{File: path, Key: key, Msg: msg}
	if data, err := readFile(path); err == nil {
		if pos, perr := positions(data); perr == nil {
			e.Line = pos.line(key)
		}
	}
	return e
}

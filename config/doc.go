// Package config reads the netcluster server configuration: a JWCC file
// (JSON with comments and trailing commas, also called HuJSON) that becomes a
// validated [*Config].
//
// Use [Load] to read a file, [Parse] to read bytes, [Default] for the
// built-in configuration, or [New] to build one in code and check it with
// [Config.Validate].
//
// # Strictness
//
// A typo must never pass silently: unknown keys, duplicate keys and values
// of the wrong type are errors, and so is every value outside its range.
// Each problem is an [*Error] naming the file, line, column and key path:
//
//	config: /etc/nc.json:12:5: channels.A.propagatetochanels: unknown key (did you mean "propagatetochannels"?)
//	config: x.json:3:11: port: want an integer from 1 to 65535, got "abc"
//
// Parse reports up to ten problems at once, joined with [errors.Join];
// [errors.As] finds the first.
//
// # File format
//
// Keys are lowercase, as in the original Node.js netcluster. The [Config]
// and [Channel] fields list each key and its default; the commented default
// file returned by [DefaultFile] shows them all. The channel named
// [ControlChannel] always exists: Parse adds it, with every flag false, when
// the file leaves it out.
package config

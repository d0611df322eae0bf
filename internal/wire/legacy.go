package wire

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"unicode/utf8"
)

// The legacy v1 wire of the Node.js original: each message is a UTF-8
// JSON object followed by one NUL byte.
//
//	{"channel":"A","broadcast":false,"event":"log","data":{"x":1}}\0

// IsLegacyStart reports whether b can open a legacy connection: '{' or
// JSON whitespace.
func IsLegacyStart(b byte) bool {
	return b == '{' || b == ' ' || b == '\t' || b == '\r' || b == '\n'
}

// LegacyEnvelope is a decoded legacy message. Channel is what the sender
// wrote; servers ignore it and use the socket's channel, as the original
// did for routing.
type LegacyEnvelope struct {
	Channel string          `json:"channel"`
	Event   string          `json:"event"`
	Data    json.RawMessage `json:"data"`
}

// ErrLegacyTooLarge is returned when a legacy message has no NUL within
// the size limit.
var ErrLegacyTooLarge = errors.New("wire: legacy message too large")

// ReadLegacy reads one NUL-terminated message from br, without the NUL.
// The result aliases br's buffer when the message fits in it, so it is
// valid only until the next read.
func ReadLegacy(br *bufio.Reader, max int, scratch *[]byte) ([]byte, error) {
	line, err := br.ReadSlice(0)
	if err == nil {
		if len(line)-1 > max {
			return nil, fmt.Errorf("%w: no NUL within %d bytes", ErrLegacyTooLarge, max)
		}
		return line[:len(line)-1], nil
	}
	if err != bufio.ErrBufferFull {
		if err == io.EOF && len(line) > 0 {
			return nil, io.ErrUnexpectedEOF
		}
		return nil, err
	}
	buf := append((*scratch)[:0], line...)
	for {
		if len(buf) > max {
			*scratch = nil
			return nil, fmt.Errorf("%w: no NUL within %d bytes", ErrLegacyTooLarge, max)
		}
		line, err = br.ReadSlice(0)
		buf = append(buf, line...)
		switch err {
		case nil:
			if cap(buf) <= 4*br.Size() {
				*scratch = buf // keep only a small buffer for reuse
			} else {
				*scratch = nil
			}
			if len(buf)-1 > max {
				return nil, fmt.Errorf("%w: no NUL within %d bytes", ErrLegacyTooLarge, max)
			}
			return buf[:len(buf)-1], nil
		case bufio.ErrBufferFull:
		default:
			return nil, unexpected(err)
		}
	}
}

// ParseLegacy decodes a legacy envelope. The event must be a non-empty
// string; data may be any JSON value or absent (then it is null).
func ParseLegacy(b []byte) (LegacyEnvelope, error) {
	var env LegacyEnvelope
	if !json.Valid(b) {
		if err := json.Unmarshal(b, new(json.RawMessage)); err != nil && strings.Contains(err.Error(), "exceeded max depth") {
			return env, errors.New("legacy message: JSON nested too deep (more than 10000 levels)")
		}
		return env, errors.New("legacy message: not valid JSON")
	}
	if err := json.Unmarshal(b, &env); err != nil {
		return env, fmt.Errorf("legacy message: %w", err)
	}
	if env.Event == "" {
		return env, errors.New(`legacy message: "event" is missing or empty`)
	}
	if len(env.Event) > MaxEventLen {
		return env, fmt.Errorf("legacy message: event name longer than %d bytes", MaxEventLen)
	}
	if len(env.Data) == 0 {
		env.Data = json.RawMessage("null")
	}
	return env, nil
}

// AppendLegacy appends a legacy envelope for a message, NUL included.
// JSON data is embedded as it is if it is valid UTF-8; other data becomes
// a JSON string: the bytes themselves when they are valid UTF-8, else
// their standard base64.
func AppendLegacy(dst []byte, v *MsgView) []byte {
	dst = append(dst, `{"channel":`...)
	dst = appendJSONString(dst, v.Channel)
	dst = append(dst, `,"broadcast":false,"event":`...)
	dst = appendJSONString(dst, v.Event)
	dst = append(dst, `,"data":`...)
	switch {
	case v.Flags&FlagJSON != 0 && len(v.Data) == 0:
		dst = append(dst, "null"...)
	case v.Flags&FlagJSON != 0 && json.Valid(v.Data) && utf8.Valid(v.Data):
		dst = append(dst, v.Data...)
	case utf8.Valid(v.Data):
		dst = appendJSONString(dst, v.Data)
	default:
		dst = append(dst, '"')
		dst = base64.StdEncoding.AppendEncode(dst, v.Data)
		dst = append(dst, '"')
	}
	return append(dst, '}', 0)
}

// appendJSONString appends s as a JSON string, as encoding/json writes it
// without HTML escaping. Printable ASCII without quotes or backslashes, the
// common case, is copied as it is; anything else goes through
// encoding/json, which escapes it.
func appendJSONString(dst, s []byte) []byte {
	plain := true
	for _, b := range s {
		if b < 0x20 || b >= 0x7f || b == '"' || b == '\\' {
			plain = false
			break
		}
	}
	if plain {
		dst = append(dst, '"')
		dst = append(dst, s...)
		return append(dst, '"')
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.Encode(string(s)) // a string always encodes
	return append(dst, bytes.TrimSuffix(buf.Bytes(), []byte("\n"))...)
}

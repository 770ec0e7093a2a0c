package loadgen

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
)

// errMalformed marks a response this parser could not read.
var errMalformed = errors.New("malformed response")

// response is what readResponse keeps of a response.
type response struct {
	status int
	close  bool // the server will close the connection after it
}

// readResponse reads one HTTP/1.x response to a GET from r, body
// included, keeping only the status and whether the connection stays open.
// It allocates nothing for a response with Content-Length.
func readResponse(r *bufio.Reader) (response, error) {
	var resp response
	line, err := r.ReadSlice('\n')
	if err != nil {
		return resp, err
	}
	// "HTTP/1.1 200 OK\r\n"
	if len(line) < 12 || !bytes.HasPrefix(line, []byte("HTTP/1.")) || line[8] != ' ' {
		return resp, fmt.Errorf("%w: status line %q", errMalformed, line)
	}
	for _, c := range line[9:12] {
		if c < '0' || c > '9' {
			return resp, fmt.Errorf("%w: status line %q", errMalformed, line)
		}
		resp.status = resp.status*10 + int(c-'0')
	}
	http10 := line[7] == '0'
	resp.close = http10

	length, chunked := int64(-1), false
	for {
		line, err := r.ReadSlice('\n')
		if err != nil {
			return resp, noEOF(err)
		}
		if len(line) <= 2 { // "\r\n": end of headers
			break
		}
		colon := bytes.IndexByte(line, ':')
		if colon < 0 {
			return resp, fmt.Errorf("%w: header line %q", errMalformed, line)
		}
		name, value := line[:colon], bytes.TrimSpace(line[colon+1:])
		switch {
		case equalFold(name, "content-length"):
			length = 0
			for _, c := range value {
				if c < '0' || c > '9' {
					return resp, fmt.Errorf("%w: Content-Length %q", errMalformed, value)
				}
				length = length*10 + int64(c-'0')
			}
		case equalFold(name, "transfer-encoding"):
			chunked = equalFold(value, "chunked")
		case equalFold(name, "connection"):
			if equalFold(value, "close") {
				resp.close = true
			} else if equalFold(value, "keep-alive") {
				resp.close = false
			}
		}
	}

	switch {
	case resp.status/100 == 1 || resp.status == 204 || resp.status == 304:
		return resp, nil
	case chunked:
		return resp, readChunked(r)
	case length >= 0:
		_, err := r.Discard(int(length))
		return resp, noEOF(err)
	default: // the body runs to the end of the connection
		resp.close = true
		_, err := io.Copy(io.Discard, r)
		return resp, err
	}
}

func readChunked(r *bufio.Reader) error {
	for {
		line, err := r.ReadSlice('\n')
		if err != nil {
			return noEOF(err)
		}
		var size int
		for _, c := range bytes.TrimSpace(line) {
			var d byte
			switch {
			case c >= '0' && c <= '9':
				d = c - '0'
			case c >= 'a' && c <= 'f':
				d = c - 'a' + 10
			case c >= 'A' && c <= 'F':
				d = c - 'A' + 10
			case c == ';': // chunk extension
				goto sized
			default:
				return fmt.Errorf("%w: chunk size %q", errMalformed, line)
			}
			if size > 1<<30 {
				return fmt.Errorf("%w: chunk size %q", errMalformed, line)
			}
			size = size<<4 | int(d)
		}
	sized:
		if size == 0 {
			for { // trailers, then the blank line
				line, err := r.ReadSlice('\n')
				if err != nil {
					return noEOF(err)
				}
				if len(line) <= 2 {
					return nil
				}
			}
		}
		if _, err := r.Discard(size + 2); err != nil { // data and its CRLF
			return noEOF(err)
		}
	}
}

// noEOF turns an EOF in the middle of a response into ErrUnexpectedEOF.
func noEOF(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}

// equalFold is bytes.EqualFold against an ASCII lower-case string, without
// converting either to the other's type.
func equalFold(b []byte, lower string) bool {
	if len(b) != len(lower) {
		return false
	}
	for i := range len(b) {
		c := b[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != lower[i] {
			return false
		}
	}
	return true
}

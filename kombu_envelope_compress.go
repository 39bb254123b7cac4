package kombu

import (
	"bytes"
	"compress/bzip2"
	"compress/gzip"
	"compress/zlib"
	"errors"
	"fmt"
	"io"
	"strings"
)

// Kombu's compression header names the codec by content type or alias. Its "gzip"
// (application/x-gzip) is zlib data, written by Python's zlib.compress.
const (
	// compressionGzip is the header Kombu writes for compression="gzip" or "zlib".
	compressionGzip = "application/x-gzip"
	// compressionBzip2 is the header Kombu writes for compression="bzip2".
	compressionBzip2 = "application/x-bz2"
)

// decompress undoes Kombu's compression of a payload, reading at most limit bytes.
func decompress(kind string, data []byte, limit int) ([]byte, error) {
	var r io.Reader
	var err error
	switch strings.ToLower(kind) {
	case compressionGzip, "gzip", "zlib", "application/gzip", "application/zlib", "application/x-zlib":
		// Accept real gzip too: some producers take the header's name at its word.
		if len(data) >= 2 && data[0] == 0x1f && data[1] == 0x8b {
			r, err = gzip.NewReader(bytes.NewReader(data))
		} else {
			r, err = zlib.NewReader(bytes.NewReader(data))
		}
	case compressionBzip2, "bzip2", "bzip", "application/x-bzip2":
		r = bzip2.NewReader(bytes.NewReader(data))
	default:
		return nil, &DecodeError{Part: "compression", Err: fmt.Errorf("%w: %q", ErrUnsupportedCompression, kind)}
	}
	if err != nil {
		return nil, &DecodeError{Part: "compression", Err: fmt.Errorf("%s payload: %w", kind, err)}
	}
	out, err := io.ReadAll(io.LimitReader(r, int64(limit)+1))
	if err != nil {
		return nil, &DecodeError{Part: "compression", Err: fmt.Errorf("%s payload: %w", kind, err)}
	}
	if len(out) > limit {
		return nil, &DecodeError{Part: "compression", Err: fmt.Errorf("%s payload decompresses to more than %d bytes", kind, limit)}
	}
	return out, nil
}

// compress compresses a payload as Kombu does, returning the compression header to send
// ("" when the payload is left uncompressed).
func compress(kind string, data []byte) ([]byte, string, error) {
	switch strings.ToLower(kind) {
	case compressionGzip, "gzip", "zlib":
		var buf bytes.Buffer
		w := zlib.NewWriter(&buf)
		if _, err := w.Write(data); err != nil {
			return nil, "", err
		}
		if err := w.Close(); err != nil {
			return nil, "", err
		}
		return buf.Bytes(), compressionGzip, nil
	case compressionBzip2, "bzip2", "bzip", "application/x-bzip2":
		// Go can read bzip2 but not write it: such a payload (e.g. a received one being
		// forwarded) goes out uncompressed, which every Kombu consumer reads.
		return data, "", nil
	}
	return nil, "", fmt.Errorf("kombu: %w: %q", ErrUnsupportedCompression, kind)
}

// setMessageID names the SQS message in a decoding error.
func setMessageID(err error, id string) {
	var de *DecodeError
	if errors.As(err, &de) {
		de.MessageID = id
	}
}

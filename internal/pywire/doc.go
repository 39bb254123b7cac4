// Package pywire reads and writes JSON the way Python's json module and Kombu's serializer
// do: a small allocation-light scanner, a writer that produces json.dumps's bytes (", " and
// ": " separators, ensure_ascii escapes), Python's repr of decoded values, and the ISO-8601
// times Celery writes. It is shared by the Kombu envelope codec and the Celery task layer.
package pywire

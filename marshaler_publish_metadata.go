package kombu

import (
	"slices"
	"strings"

	"github.com/ThreeDotsLabs/watermill/message"
)

// publishMetadata is what EnvelopeMarshaler.Marshal reads from the metadata of a message to
// publish, gathered in one pass over the map: such a message carries a handful of keys, and a
// lookup for each key Marshal knows costs more than the pass.
type publishMetadata struct {
	contentType, contentEncoding string
	compression                  string
	hasCompression               bool
	headers                      string // MetadataHeaders
	hasHeaders                   bool
	correlationID, replyTo       string
	groupID, deduplicationID     string
	delaySeconds, expiration     string
	deliveryMode, priority       string
	// attrs reports whether a key has MetadataAttributePrefix.
	attrs bool
}

// metaPair is one metadata entry.
type metaPair struct{ key, value string }

// readPublishMetadata reads md. The keys that become headers (not reserved) are appended to
// extra, which the caller may give room for, with their values, sorted by key: a slice apart
// from pm, so that a caller's room for it stays on its stack.
func readPublishMetadata(md message.Metadata, extra []metaPair) (pm publishMetadata, extras []metaPair) {
	for k, v := range md {
		switch k {
		case MetadataContentType:
			pm.contentType = v
		case MetadataContentEncoding:
			pm.contentEncoding = v
		case MetadataCompression:
			pm.compression, pm.hasCompression = v, true
		case MetadataHeaders:
			pm.headers, pm.hasHeaders = v, true
		case MetadataCorrelationID:
			pm.correlationID = v
		case MetadataReplyTo:
			pm.replyTo = v
		case MetadataMessageGroupID:
			pm.groupID = v
		case MetadataDeduplicationID:
			pm.deduplicationID = v
		case MetadataDelaySeconds:
			pm.delaySeconds = v
		case MetadataExpiration:
			pm.expiration = v
		case metadataDeliveryMode:
			pm.deliveryMode = v
		case MetadataPriority:
			pm.priority = v
		default:
			if !isReservedMetadata(k) {
				extra = append(extra, metaPair{k, v})
			} else if strings.HasPrefix(k, MetadataAttributePrefix) {
				pm.attrs = true
			}
		}
	}
	if len(extra) > 1 {
		slices.SortFunc(extra, func(a, b metaPair) int { return strings.Compare(a.key, b.key) })
	}
	return pm, extra
}

// extraIndex returns the index of the key k in extra (see readPublishMetadata), or -1: a loop
// for the few keys messages usually have.
func extraIndex(extra []metaPair, k string) int {
	if len(extra) > 8 {
		if i, ok := slices.BinarySearchFunc(extra, k, func(p metaPair, k string) int { return strings.Compare(p.key, k) }); ok {
			return i
		}
		return -1
	}
	for i := range extra {
		if extra[i].key == k {
			return i
		}
	}
	return -1
}

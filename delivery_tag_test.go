package kombu

import (
	"testing"

	"github.com/google/uuid"
)

func TestDeliveryTagIsFreshUUID4(t *testing.T) {
	seen := map[string]bool{}
	for i := 0; i < 10000; i++ {
		tag := newDeliveryTag()
		u, err := uuid.Parse(tag)
		if err != nil || len(tag) != 36 || u.Version() != 4 || u.Variant() != uuid.RFC4122 || u.String() != tag {
			t.Fatalf("tag %q is not a canonical version 4 UUID (%v)", tag, err)
		}
		if seen[tag] {
			t.Fatalf("tag %q repeated", tag)
		}
		seen[tag] = true
	}
}

package kombu

import "fmt"

// validateBackoffPolicy checks a receive-count → seconds table.
func validateBackoffPolicy(p map[int]int) error {
	for count, secs := range p {
		if count < 1 {
			return fmt.Errorf("receive counts must be at least 1, got %d", count)
		}
		if secs < 0 || secs > 43200 {
			return fmt.Errorf("seconds must be between 0 and 43200, got %d for receive count %d", secs, count)
		}
	}
	return nil
}

package kombu

import (
	"fmt"
	"testing"
)

func TestSplitBatches(t *testing.T) {
	sizes := make([]int, 25)
	for i := range sizes {
		sizes[i] = 100
	}
	got := splitBatches(sizes, 1000)
	want := [][2]int{{0, 10}, {10, 20}, {20, 25}}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("by count: %v, want %v", got, want)
	}
	got = splitBatches([]int{400, 400, 400, 1000, 1}, 1000)
	want = [][2]int{{0, 2}, {2, 3}, {3, 4}, {4, 5}}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("by size: %v, want %v", got, want)
	}
}

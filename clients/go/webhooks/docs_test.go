package webhooks_test

import (
	"os"
	"reflect"
	"strings"
	"testing"
)

// goSection is the "## Go" section of docs/clients.md.
func goSection(t *testing.T) string {
	t.Helper()
	page, err := os.ReadFile("../../../docs/clients.md")
	if err != nil {
		t.Fatal(err)
	}
	text := string(page)
	start := strings.Index(text, "\n## Go\n")
	if start < 0 {
		t.Fatal("docs/clients.md has no \"## Go\" section")
	}
	section := text[start+len("\n## Go\n"):]
	if end := strings.Index(section, "\n## "); end >= 0 {
		section = section[:end]
	}
	return section
}

// fencedBlocks are the bodies of the section's ```go blocks, in order.
func fencedBlocks(section, info string) []string {
	var blocks []string
	lines := strings.Split(section, "\n")
	for i := 0; i < len(lines); i++ {
		if strings.TrimSpace(lines[i]) != "```"+info {
			continue
		}
		var body []string
		for i++; i < len(lines) && strings.TrimSpace(lines[i]) != "```"; i++ {
			body = append(body, lines[i])
		}
		blocks = append(blocks, strings.Join(body, "\n"))
	}
	return blocks
}

// snippetRegions are the "// doc:NAME" regions of example_test.go, less the function body's
// one tab of indentation, in order.
func snippetRegions(t *testing.T) []string {
	t.Helper()
	source, err := os.ReadFile("example_test.go")
	if err != nil {
		t.Fatal(err)
	}
	var regions []string
	var region []string
	inside := false
	for _, line := range strings.Split(string(source), "\n") {
		trimmed := strings.TrimSpace(line)
		switch {
		case strings.HasPrefix(trimmed, "// doc:"):
			inside, region = true, nil
		case strings.HasPrefix(trimmed, "// end doc:"):
			inside = false
			regions = append(regions, strings.Join(region, "\n"))
		case inside:
			region = append(region, strings.TrimPrefix(line, "\t"))
		}
	}
	return regions
}

func TestDocSnippetsAreTheTestedCode(t *testing.T) {
	shown := fencedBlocks(goSection(t), "go")
	tested := snippetRegions(t)
	if len(tested) < 4 {
		t.Fatalf("example_test.go has %d doc regions, want connect, publish, field-error and watch", len(tested))
	}
	if !reflect.DeepEqual(shown, tested) {
		t.Fatalf("the ```go blocks of docs/clients.md (## Go) are not the regions of example_test.go, in order:\n"+
			"--- page ---\n%s\n--- example_test.go ---\n%s", strings.Join(shown, "\n~~~\n"), strings.Join(tested, "\n~~~\n"))
	}
}

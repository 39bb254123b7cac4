// Command apicount counts the exported top-level identifiers (functions, types, constants,
// variables; not methods or fields) of the Go packages in the directories given, and prints
// one line per package. With -max N it exits non-zero when the first package exports more
// than N, and with -list it names them.
//
//	go run ./internal/apicount -max 70 . ./celery ./kombumetrics
package main

import (
	"flag"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

func main() {
	maxFirst := flag.Int("max", 0, "fail when the first package exports more than this many identifiers (0: no limit)")
	list := flag.Bool("list", false, "list the identifiers")
	flag.Parse()
	dirs := flag.Args()
	if len(dirs) == 0 {
		dirs = []string{"."}
	}
	status := 0
	for i, dir := range dirs {
		names, pkg, err := exported(dir)
		if err != nil {
			fmt.Fprintf(os.Stderr, "apicount: %s: %v\n", dir, err)
			os.Exit(2)
		}
		fmt.Printf("%-24s %-14s %3d exported identifiers\n", dir, pkg, len(names))
		if *list {
			fmt.Printf("    %s\n", strings.Join(names, " "))
		}
		if i == 0 && *maxFirst > 0 && len(names) > *maxFirst {
			fmt.Fprintf(os.Stderr, "apicount: package %s exports %d identifiers, more than %d\n", pkg, len(names), *maxFirst)
			status = 1
		}
	}
	os.Exit(status)
}

// exported returns the sorted exported top-level identifiers of the package in dir, tests
// excluded.
func exported(dir string) ([]string, string, error) {
	fset := token.NewFileSet()
	files, err := filepath.Glob(filepath.Join(dir, "*.go"))
	if err != nil {
		return nil, "", err
	}
	var names []string
	pkg := ""
	for _, path := range files {
		if strings.HasSuffix(path, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, path, nil, parser.SkipObjectResolution)
		if err != nil {
			return nil, "", err
		}
		if f.Name.Name == "main" || strings.HasSuffix(f.Name.Name, "_test") {
			continue
		}
		pkg = f.Name.Name
		for _, decl := range f.Decls {
			switch d := decl.(type) {
			case *ast.FuncDecl:
				if d.Recv == nil && d.Name.IsExported() {
					names = append(names, d.Name.Name)
				}
			case *ast.GenDecl:
				for _, spec := range d.Specs {
					switch s := spec.(type) {
					case *ast.TypeSpec:
						if s.Name.IsExported() {
							names = append(names, s.Name.Name)
						}
					case *ast.ValueSpec:
						for _, n := range s.Names {
							if n.IsExported() {
								names = append(names, n.Name)
							}
						}
					}
				}
			}
		}
	}
	if pkg == "" {
		return nil, "", fmt.Errorf("no Go package")
	}
	sort.Strings(names)
	return names, pkg, nil
}

package main

import (
	"fmt"
	"strings"
)

// flagDef describes one flag of a command.
type flagDef struct {
	long  string // without dashes
	short byte   // 0 when the flag has no one-letter form
	value bool   // takes a value (otherwise boolean)
}

// parsedArgs is the result of parseArgs.
type parsedArgs struct {
	values     map[string]string // value flags, by long name
	bools      map[string]bool   // boolean flags, by long name
	positional []string
	rest       []string // arguments after "--" (or after the positional limit)
	sawRest    bool
}

// parseArgs is a small GNU-style parser: flags may come before or after positional arguments;
// "--name value", "--name=value", "-n value", "-nvalue" and "-abc" (clustered booleans) work;
// "--" ends flag parsing. When maxPositional > 0, the argument after the maxPositional-th
// positional one starts the rest (so `exec POD ls -l` keeps -l for the command).
func parseArgs(args []string, defs []flagDef, maxPositional int) (*parsedArgs, error) {
	p := &parsedArgs{values: map[string]string{}, bools: map[string]bool{}}
	byLong := map[string]flagDef{}
	byShort := map[byte]flagDef{}
	for _, d := range defs {
		byLong[d.long] = d
		if d.short != 0 {
			byShort[d.short] = d
		}
	}
	for i := 0; i < len(args); i++ {
		a := args[i]
		switch {
		case a == "--":
			p.rest = args[i+1:]
			p.sawRest = true
			return p, nil
		case strings.HasPrefix(a, "--"):
			name, val, hasVal := strings.Cut(a[2:], "=")
			d, ok := byLong[name]
			if !ok {
				return nil, fmt.Errorf("unknown flag: --%s", name)
			}
			if !d.value {
				if hasVal {
					switch strings.ToLower(val) {
					case "true", "1":
						p.bools[d.long] = true
					case "false", "0":
						p.bools[d.long] = false
					default:
						return nil, fmt.Errorf("invalid value %q for flag --%s", val, name)
					}
				} else {
					p.bools[d.long] = true
				}
				continue
			}
			if !hasVal {
				if i+1 >= len(args) {
					return nil, fmt.Errorf("flag needs an argument: --%s", name)
				}
				i++
				val = args[i]
			}
			p.values[d.long] = val
		case strings.HasPrefix(a, "-") && len(a) > 1:
			for j := 1; j < len(a); j++ {
				d, ok := byShort[a[j]]
				if !ok {
					return nil, fmt.Errorf("unknown shorthand flag: %q in %s", a[j], a)
				}
				if !d.value {
					p.bools[d.long] = true
					continue
				}
				val := strings.TrimPrefix(a[j+1:], "=")
				if j+1 == len(a) {
					if i+1 >= len(args) {
						return nil, fmt.Errorf("flag needs an argument: -%c", a[j])
					}
					i++
					val = args[i]
				}
				p.values[d.long] = val
				break
			}
		default:
			if maxPositional > 0 && len(p.positional) == maxPositional {
				p.rest = args[i:]
				return p, nil
			}
			p.positional = append(p.positional, a)
		}
	}
	return p, nil
}

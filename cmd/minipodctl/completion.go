package main

import (
	"fmt"
	"io"
)

// bashCompletion completes commands, flags and pod names (asked of the daemon).
const bashCompletion = `# bash completion for minipodctl; load with: source <(minipodctl completion bash)
_minipodctl() {
    local cur prev cmd
    cur="${COMP_WORDS[COMP_CWORD]}"
    prev="${COMP_WORDS[COMP_CWORD-1]}"
    cmd="${COMP_WORDS[1]}"
    if [[ ${COMP_CWORD} -eq 1 ]]; then
        COMPREPLY=( $(compgen -W "status logs exec describe events rollout images validate version completion help" -- "$cur") )
        return
    fi
    case "$prev" in
        -o|--output) COMPREPLY=( $(compgen -W "table wide json yaml" -- "$cur") ); return ;;
        --socket) COMPREPLY=( $(compgen -f -- "$cur") ); return ;;
    esac
    case "$cmd" in
        validate) COMPREPLY=( $(compgen -f -- "$cur") ); return ;;
        completion) COMPREPLY=( $(compgen -W "bash" -- "$cur") ); return ;;
        rollout) if [[ ${COMP_CWORD} -eq 2 ]]; then COMPREPLY=( $(compgen -W "history retry" -- "$cur") ); return; fi ;;
        images) [[ "$cur" != -* ]] && { COMPREPLY=( $(compgen -W "prune" -- "$cur") ); return; } ;;
    esac
    if [[ "$cur" == -* ]]; then
        COMPREPLY=( $(compgen -W "-o -w -c -f -p -i -t --tail --since --timestamps --previous --socket --help" -- "$cur") )
        return
    fi
    local pods
    pods=$(minipodctl status 2>/dev/null | awk 'NR > 1 { print $1 }')
    COMPREPLY=( $(compgen -W "$pods" -- "$cur") )
}
complete -F _minipodctl minipodctl
`

func runCompletion(args []string, stdout, stderr io.Writer) int {
	if len(args) != 1 || args[0] != "bash" {
		fmt.Fprintln(stderr, "Error: usage: minipodctl completion bash")
		return 1
	}
	fmt.Fprint(stdout, bashCompletion)
	return 0
}

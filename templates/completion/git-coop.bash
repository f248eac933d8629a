# git coop completion for bash.
# git's own completion calls _git_coop for `git coop <TAB>`; the candidates come from
# git coop itself (_GIT_COOP_COMPLETE), so new commands and options complete unchanged.
# Load it with `source <(git coop completion bash)` in ~/.bashrc, or save it as
# ~/.local/share/bash-completion/completions/git-coop.
_git_coop() {
    local IFS=$'\n' start=${__git_cmd_idx:-1} word=${cur-} reply
    reply=$(COMP_WORDS="git-coop ${words[*]:start+1:cword-start}" \
        COMP_CWORD=$((cword - start)) _GIT_COOP_COMPLETE=complete_bash git coop 2>/dev/null)
    # Nothing, or the word itself (a path): let bash complete file names.
    if [[ -z $reply || ( $reply == "$word" && $word != -* ) ]]; then
        COMPREPLY=()
        return 0
    fi
    [[ $word == -*=* ]] && word=${word#*=}
    __gitcomp_nl "$reply" "" "$word"
}

# git coop completion for fish.
# For `git coop ...` (through git's completion) and `git-coop ...`; the candidates come
# from git coop itself (_GIT_COOP_COMPLETE), so new commands and options complete
# unchanged. Load it with `git coop completion fish | source` in config.fish, or save it
# as ~/.config/fish/completions/git-coop.fish.
function __git_coop_complete
    set -l tokens (commandline -opc)
    # keep what follows `coop` in `git [OPTIONS] coop ...`, or `git-coop` in `git-coop ...`
    set -l at (contains --index -- coop $tokens)
    if test "$tokens[1]" = git -a -n "$at"
        set tokens $tokens[(math $at + 1)..-1]
    else
        set -e tokens[1]
    end
    set -l current (commandline -ct)
    set -lx _TYPER_COMPLETE_ARGS (string join ' ' -- git-coop (string escape -- $tokens) "$current")
    set -l reply (_GIT_COOP_COMPLETE=complete_fish _TYPER_COMPLETE_FISH_ACTION=get-args \
        git coop 2>/dev/null | string match -v -- '')
    # nothing, or the word itself back (a path argument): complete file names, as bash does
    if test (count $reply) -eq 0
        or test (count $reply) -eq 1 -a "$reply[1]" = "$current"; and not string match -q -- '-*' $current
        __fish_complete_path $current
    else
        printf '%s\n' $reply
    end
end
complete --command git-coop --no-files --arguments '(__git_coop_complete)'
# fish 3.6's git completion does not hand `git coop` to git-coop's completions itself.
complete --command git --no-files --condition '__fish_git_using_command coop' --arguments '(__git_coop_complete)'

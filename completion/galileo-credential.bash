# SPDX-License-Identifier: MIT
# bash completion for galileo-credential(1)                -*- shell-script -*-

# servers that hold a stored credential: the docker dialect's list, bounded
# to 2 s; nothing when the keystore cannot be reached (its line is on stdout,
# and is no key of the JSON object)
_galileo_credential_stored()
{
    command -v galileo-credential >/dev/null 2>&1 || return
    timeout 2 galileo-credential --protocol=docker list </dev/null 2>/dev/null |
        grep -o '[{,]"[a-z]*://[^"\\]*":' | sed 's/^[{,]"//; s/":$//'
}

# servers named in the configuration file ("server =" and [URL] sections),
# and the servers with a stored credential
_galileo_credential_servers()
{
    local cfg=${GALILEO_CREDENTIAL_CONFIG:-${XDG_CONFIG_HOME:-$HOME/.config}/galileo-credential/config}
    [[ -r $cfg ]] &&
        sed -n -e 's/^[[:space:]]*server[[:space:]]*=[[:space:]]*\([^[:space:]]*\).*/\1/p' \
               -e 's/^[[:space:]]*\[\([^]]*\)\].*/\1/p' "$cfg" 2>/dev/null
    _galileo_credential_stored
}

_galileo_credential()
{
    local cur prev words cword
    _init_completion -n = || return

    local commands="login logout token exec status doctor get store erase capability"
    local cmd="" i
    for ((i = 1; i < cword; i++)); do
        case ${words[i]} in
            --protocol=*) ;;
            --) [[ $cmd == exec ]] && { _command_offset $((i + 1)); return; } ;;
            -*) ;;
            *) [[ -z $cmd ]] && cmd=${words[i]} ;;
        esac
    done

    case $prev in
        --server) COMPREPLY=($(compgen -W "$(_galileo_credential_servers | sort -u)" -- "$cur")); return ;;
        --kind) COMPREPLY=($(compgen -W "api-key basic bearer" -- "$cur")); return ;;
        --org-id | --org-slug | --username | --min-ttl) return ;;
    esac
    if [[ $cur == --protocol=* ]]; then
        COMPREPLY=($(compgen -W "git docker native" -- "${cur#--protocol=}"))
        return
    fi

    local opts
    case $cmd in
        "") COMPREPLY=($(compgen -W "$commands --help --version --protocol=" -- "$cur"))
            [[ ${COMPREPLY-} == --protocol= ]] && compopt -o nospace
            return ;;
        login) opts="--server --kind --username --org-id --org-slug --no-verify --help" ;;
        logout | doctor) opts="--server --help" ;;
        token) opts="--server --org-id --org-slug --refresh --min-ttl --help" ;;
        exec) opts="--server --org-id --org-slug --min-ttl --api-key --help --" ;;
        status) opts="--server --json --help" ;;
        *) return ;;
    esac
    COMPREPLY=($(compgen -W "$opts" -- "$cur"))
}

_docker_credential_galileo()
{
    local cur prev words cword
    _init_completion || return
    ((cword == 1)) && COMPREPLY=($(compgen -W "store get erase list version" -- "$cur"))
}

_git_credential_galileo()
{
    local cur prev words cword
    _init_completion || return
    ((cword == 1)) && COMPREPLY=($(compgen -W "get store erase capability" -- "$cur"))
}

complete -F _galileo_credential galileo-credential
complete -F _docker_credential_galileo docker-credential-galileo
complete -F _git_credential_galileo git-credential-galileo

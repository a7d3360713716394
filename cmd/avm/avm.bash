# SPDX-License-Identifier: Apache-2.0
# Bash completion for avm(1) and its personalities start-avm and cvd2img.
# Installed as share/bash-completion/completions/avm (the personalities are
# symbolic links to it).  Needs bash only, not the bash-completion package.
#
# The option lists below are checked against every subcommand's --help by
# the test suite (tests/unit/test_completion.c); start-avm's options are
# read from its own --help when completing.

_avm_cmds='start profiles check cvd2img inspect status stop screenshot snapshot kube help'
_avm_opts_start='-p --profile -O --option --set -i --instance --images --caps --allow-unapproved -n --dry-run --json --stop-after-boot --restore --restore-or-boot --log-target -v --verbose -q --quiet -h --help'
_avm_opts_check='-p --profile -O --option --set -i --instance --images --caps --allow-unapproved --json -h --help'
_avm_opts_cvd2img='-o --output -a --arch --key --pubkey -p --profile -O --option --set --no-virgl --seed -q --quiet -h --help'
_avm_opts_inspect='--json --verify --manifest -h --help'
_avm_opts_status='-i --instance -a --all --json --ready --live -h --help'
_avm_opts_stop='-i --instance --kill --no-wait --timeout -h --help'
_avm_opts_screenshot='-i --instance -o --output-file --output -h --help'
_avm_opts_snapshot='-i --instance --replace --compress --json -h --help'
_avm_opts_kube='-p --profile -O --option --set -i --instance --images --caps --allow-unapproved --kind --replicas --name --image --kvm-resource --kvm-hostpath --kvm-group --images-claim --images-image -h --help'
_avm_opts_profiles_list='--json --names'
_avm_opts_profiles_show='-p --profile -O --option --set -h --help'
_avm_opts_profiles_keys='--brief'
# slp/cvd2img's interface (avm invoked as cvd2img).
_avm_opts_cvd2img_compat='-a --arch -s --system -p --props -v --virgl-props -h --help'

# Add the words of $1 that start with $2 to COMPREPLY.
_avm_words ()
{
  local IFS=$' \t\n' w
  for w in $(compgen -W "$1" -- "$2"); do
    COMPREPLY+=("$w")
  done
}

# Add files (or, with -d, directories) matching $1.
_avm_files ()
{
  local kind=-f
  if [[ $1 == -d ]]; then
    kind=-d
    shift
  fi
  local IFS=$'\n' f
  for f in $(compgen "$kind" -- "$1"); do
    COMPREPLY+=("$f")
  done
  compopt -o filenames 2>/dev/null
  return 0
}

# The avm program being completed ($1 as typed, ~/ expanded); avm from
# $PATH for the personalities.
_avm_program ()
{
  local p=$1
  case ${p##*/} in
    start-avm | cvd2img) p=avm ;;
  esac
  # shellcheck disable=SC2088 # a literal "~/" typed by the user
  [[ $p == "~/"* ]] && p=$HOME/${p#"~/"}
  printf '%s\n' "$p"
}

# Profile names as avm finds them (installed, /etc/avm, per-user), then
# files when the word looks like a path.
_avm_profiles ()
{
  local avm cur=$2
  avm=$(_avm_program "$1")
  if [[ $cur == */* || $cur == .* || $cur == "~"* ]]; then
    _avm_files "$cur"
    return
  fi
  _avm_words "$("$avm" profiles list --names 2>/dev/null)" "$cur"
}

# Running instances: runtime directories with a control socket.
_avm_instances ()
{
  local base n
  if [[ $AVM_RUNTIME_DIR == /* ]]; then
    base=$AVM_RUNTIME_DIR
  elif ((EUID == 0)); then
    base=/run/avm
  elif [[ $XDG_RUNTIME_DIR == /* ]]; then
    base=$XDG_RUNTIME_DIR/avm
  else
    base=/tmp/avm-$EUID
  fi
  local found=
  for n in "$base"/*/control.sock; do
    [[ -S $n ]] || continue
    n=${n%/control.sock}
    n=${n##*/}
    [[ $n =~ ^[0-9]+$ ]] && found+=" $n"
  done
  _avm_words "$found" "$1"
}

# start-avm's options and their arguments, read from `start-avm --help`:
# each help line that starts with options, such as "  -m, --mode PHONE|AUTO".
# Prints "OPTION ARG" lines (ARG empty for a flag).
_avm_help_options ()
{
  local line w o arg opts ws
  while IFS= read -r line; do
    [[ $line =~ ^[[:space:]]+- ]] || continue
    read -ra ws <<<"$line"
    opts=() arg=
    for w in "${ws[@]}"; do
      if [[ $w == -* ]]; then
        w=${w%,}
        w=${w%%=*}
        # "-m/--mode" names one option twice.
        local IFS=/
        for o in $w; do
          [[ $o == -* ]] && opts+=("$o")
        done
        unset IFS
      else
        [[ $w =~ ^[A-Z][A-Z0-9_|]*$ ]] && arg=$w
        break
      fi
    done
    for o in "${opts[@]}"; do
      printf '%s %s\n' "$o" "$arg"
    done
  done < <("$@" --help 2>/dev/null)
}

_avm_start_avm ()
{
  local cur=${COMP_WORDS[COMP_CWORD]} prev=${COMP_WORDS[COMP_CWORD - 1]}
  local opt arg all='' table
  COMPREPLY=()
  table=$(_avm_help_options "${COMP_WORDS[0]}")
  while read -r opt arg; do
    all+=" $opt"
    if [[ $prev == "$opt" && $COMP_CWORD -gt 1 ]]; then
      case $arg in
        '') ;;
        DIR | *DIR) _avm_files -d "$cur" ;;
        FILE | *FILE) _avm_files "$cur" ;;
        *"|"*) _avm_words "${arg//|/ }" "$cur" ;;
      esac
      [[ -n $arg ]] && return 0
    fi
  done <<<"$table"
  if [[ $cur == -* ]]; then
    _avm_words "$all" "$cur"
  else
    _avm_files -d "$cur" # the Cuttlefish directory
  fi
  return 0
}

_avm_cvd2img_compat ()
{
  local cur=${COMP_WORDS[COMP_CWORD]} prev=${COMP_WORDS[COMP_CWORD - 1]}
  COMPREPLY=()
  case $prev in
    -a | --arch) _avm_words 'x86-64 aarch64' "$cur"; return 0 ;;
    -s | --system | -p | --props | -v | --virgl-props) _avm_files "$cur"; return 0 ;;
  esac
  if [[ $cur == -* ]]; then
    _avm_words "$_avm_opts_cvd2img_compat" "$cur"
  else
    _avm_files -d "$cur"
  fi
  return 0
}

_avm ()
{
  COMPREPLY=()
  local words=("${COMP_WORDS[@]}") cword=$COMP_CWORD
  local prog=${words[0]} cur prev cmd='' sub='' i

  # --opt=value: bash splits it into "--opt" "=" "value".
  cur=${words[cword]}
  prev=${words[cword - 1]}
  if [[ $cur == = ]]; then
    cur=
  elif [[ $prev == = ]] && ((cword > 1)); then
    prev=${words[cword - 2]}
  fi

  for ((i = 1; i < cword; i++)); do
    [[ ${words[i]} == -* || ${words[i]} == = ]] && continue
    if [[ -z $cmd ]]; then
      cmd=${words[i]}
    elif [[ -z $sub && ($cmd == profiles || ($cmd == snapshot && ${words[i - 1]} != -i && ${words[i - 1]} != --instance)) ]]; then
      sub=${words[i]}
    fi
  done

  if [[ -z $cmd ]]; then
    if [[ $cur == -* ]]; then
      _avm_words '--help --version' "$cur"
    else
      _avm_words "$_avm_cmds" "$cur"
    fi
    return 0
  fi

  # Arguments of options.
  case $cmd:$prev in
    start:-p | start:--profile | check:-p | check:--profile | cvd2img:-p | cvd2img:--profile \
      | profiles:-p | profiles:--profile | kube:-p | kube:--profile)
      _avm_profiles "$prog" "$cur"
      return 0
      ;;
    start:--images | check:--images | kube:--images | cvd2img:-o | cvd2img:--output)
      _avm_files -d "$cur"
      return 0
      ;;
    start:--caps | check:--caps | kube:--caps | cvd2img:--key | cvd2img:--pubkey | inspect:--manifest | screenshot:-o \
      | screenshot:--output-file)
      _avm_files "$cur"
      return 0
      ;;
    start:--log-target)
      _avm_words 'auto file journal' "$cur"
      return 0
      ;;
    kube:--kind)
      _avm_words 'statefulset pod' "$cur"
      return 0
      ;;
    kube:--replicas | kube:--name | kube:--image | kube:--kvm-resource | kube:--kvm-group | kube:--images-claim | kube:--images-image)
      return 0
      ;;
    cvd2img:-a | cvd2img:--arch)
      _avm_words 'x86_64 aarch64' "$cur"
      return 0
      ;;
    status:-i | status:--instance | stop:-i | stop:--instance | screenshot:-i | screenshot:--instance \
      | snapshot:-i | snapshot:--instance)
      _avm_instances "$cur"
      return 0
      ;;
    *:-O | *:--option | *:--set | *:-i | *:--instance | stop:--timeout | cvd2img:--seed | screenshot:--output \
      | start:--restore | start:--restore-or-boot)
      return 0
      ;;
  esac

  local opts
  case $cmd in
    help)
      _avm_words "${_avm_cmds% help}" "$cur"
      return 0
      ;;
    profiles)
      if [[ -z $sub ]]; then
        if [[ $cur == -* ]]; then
          _avm_words '-h --help' "$cur"
        else
          _avm_words 'list show keys' "$cur"
        fi
        return 0
      fi
      case $sub in
        list | show | keys) opts=_avm_opts_profiles_$sub ;;
        *) return 0 ;;
      esac
      if [[ $cur == -* ]]; then
        _avm_words "${!opts}" "$cur"
      elif [[ $sub == show ]]; then
        _avm_profiles "$prog" "$cur"
      fi
      return 0
      ;;
    snapshot)
      if [[ $cur == -* ]]; then
        _avm_words "$_avm_opts_snapshot" "$cur"
      elif [[ -z $sub ]]; then
        _avm_words 'save list delete' "$cur"
      fi
      return 0
      ;;
    start | check | cvd2img | inspect | status | stop | screenshot | kube)
      opts=_avm_opts_$cmd
      if [[ $cur == -* ]]; then
        _avm_words "${!opts}" "$cur"
      elif [[ $cmd == cvd2img || $cmd == inspect ]]; then
        _avm_files "$cur" # a directory, archives, a disk
      fi
      return 0
      ;;
  esac
  return 0
}

complete -F _avm avm
complete -F _avm_start_avm start-avm
complete -F _avm_cvd2img_compat cvd2img

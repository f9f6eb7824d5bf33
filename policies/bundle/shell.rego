# Package warden.shell holds the checks the default policy runs on the
# shell tool's arguments ({"argv": ["ls", "-la"]}). Each dangerous pattern
# is a named rule that adds a reason to deny; warden.authz denies a shell
# call whose deny set is not empty.
#
# The checks are a guard rail in front of the sandbox, not the security
# boundary: a determined script can hide a command from any static check
# (variables, base64, a script file), so the sandbox's walls still hold.
# They read argv exactly, and the scripts a shell in argv runs with -c
# word by word (quotes dropped, so a nested `sh -c '...'` is read as well).
package warden.shell

# ---------------------------------------------------------------------------
# What the call would run.

# argv is the command vector, when it is a non-empty array of strings.
argv := input.args.argv if {
	is_array(input.args.argv)
	count(input.args.argv) > 0
	every word in input.args.argv {
		is_string(word)
	}
}

deny contains "shell needs args.argv, a non-empty array of strings" if not argv

# shells run the string after -c as a script.
shells := {"sh", "bash", "dash", "zsh", "ksh", "mksh", "ash", "fish", "csh", "tcsh"}

# scripts are the strings a shell named in argv runs with -c. Every word
# after the flag counts, so `bash -c -- "..."` is read too.
scripts contains argv[k] if {
	some j, flag in argv
	script_flag(flag)
	some i, word in argv
	i < j
	basename(word) in shells
	some k, _ in argv
	k > j
}

# script_flag matches -c and combined short flags such as -lc or -ec.
script_flag(word) if regex.match(`^-[A-Za-z]*c[A-Za-z]*$`, word)

# commands are the simple commands the call runs, each as
# {"program": basename, "args": [...]}: argv itself, and every command in
# its scripts.
commands contains command if {
	some command in commands_of(argv)
}

commands contains command if {
	some script in scripts
	some segment in segments(script)
	some command in commands_of(words(segment))
}

# segments splits a script at the places a new command can start: ; & &&
# || | newlines, ( ) of subshells and $( ), and backquotes.
segments(script) := regex.split("&&|\\|\\||[;&|\\n()`]", script)

# words splits a segment at white space and drops quotes and backslashes.
words(segment) := [word |
	some raw in regex.split(`\s+`, segment)
	word := unquote(raw)
	word != ""
]

unquote(word) := strings.replace_n({"'": "", "\"": "", "\\": ""}, word)

# commands_of reads the commands of one word list: the first word, and the
# words after find's -exec family, sudo and the like, or a shell's -c flag. Wrappers such
# as env, timeout or nohup in front of a program are skipped.
commands_of(ws) := {command |
	some start in command_starts(ws)
	p := program_index(ws, start)
	command := {"program": basename(ws[p]), "args": array.slice(ws, p + 1, count(ws))}
}

command_starts(ws) := {0} | {start |
	some i, _ in ws
	opens_command(ws, i)
	start := i + 1
}

opens_command(ws, i) if ws[i] in {"-exec", "-execdir", "-ok", "-okdir"}

opens_command(ws, i) if basename(ws[i]) in privileged_programs

opens_command(ws, i) if {
	script_flag(ws[i])
	some j, word in ws
	j < i
	basename(word) in shells
}

# program_index is the index of the first word from start that is not a
# wrapper, an option or an argument of a wrapper.
program_index(ws, start) := min(candidates) if {
	candidates := {i | some i, word in ws; i >= start; not skippable(word)}
	count(candidates) > 0
}

wrappers := {
	"env", "nice", "ionice", "nohup", "timeout", "time", "command", "exec", "builtin", "eval",
	"stdbuf", "xargs", "setsid", "busybox", "watch",
	"if", "then", "else", "do", "while", "until", "!", "{", "}", "{}",
}

skippable(word) if basename(word) in wrappers

skippable(word) if startswith(word, "-")

# An environment assignment (FOO=bar) or a number or duration (timeout 5s).
skippable(word) if regex.match(`^[A-Za-z_][A-Za-z0-9_]*=`, word)

skippable(word) if regex.match(`^[0-9][0-9.]*[smhd]?$`, word)

basename(path) := name if {
	parts := split(path, "/")
	name := parts[count(parts) - 1]
}

# short_flags are the letters of the short options in args (-rf gives r and f).
short_flags(args) := {letter |
	some arg in args
	regex.match(`^-[A-Za-z]+$`, arg)
	some letter in split(trim_prefix(arg, "-"), "")
}

operands(args) := [arg | some arg in args; not startswith(arg, "-")]

# normalized collapses repeated slashes: //etc///passwd is /etc/passwd.
normalized(path) := regex.replace(path, `/{2,}`, "/")

# ---------------------------------------------------------------------------
# The checks. Each adds one reason per offending command.

# rm -r on a path that means everything: the root, the home directory, the
# working directory, a bare glob or a top-level directory. Force (-f) or
# not, it is refused.
sweeping_paths := {
	"/", "/*", "/.", "~", "~/", "~/*", "*", ".", "./", "./*", "..", "../",
	"$HOME", "${HOME}", "$HOME/", "${HOME}/", "$HOME/*", "${HOME}/*",
}

# sweeping(path): one of those, or a top-level directory such as /usr.
sweeping(path) if normalized(path) in sweeping_paths

sweeping(path) if regex.match(`^/[^/]+/?\*?$`, normalized(path))

deny contains sprintf("rm -r on %q would delete everything under it", [target]) if {
	some command in commands
	command.program == "rm"
	rm_recursive(command.args)
	some target in operands(command.args)
	sweeping(target)
}

rm_recursive(args) if "r" in short_flags(args)

rm_recursive(args) if "R" in short_flags(args)

rm_recursive(args) if "--recursive" in args

# mkfs and friends format a device.
deny contains sprintf("%s formats a device", [command.program]) if {
	some command in commands
	formats_device(command.program)
}

formats_device(program) if startswith(program, "mkfs")

formats_device(program) if program in {"mke2fs", "mkswap", "wipefs"}

# dd of=/dev/... overwrites a device byte by byte.
harmless_devices := {"/dev/null", "/dev/zero", "/dev/stdout", "/dev/stderr"}

deny contains sprintf("dd writes straight to the device %s", [device]) if {
	some command in commands
	command.program == "dd"
	some arg in command.args
	startswith(arg, "of=/dev/")
	device := normalized(substring(arg, 3, -1))
	not device in harmless_devices
}

# Stopping or restarting the machine.
deny contains sprintf("%s stops or restarts the machine", [command.program]) if {
	some command in commands
	command.program in {"shutdown", "reboot", "halt", "poweroff"}
}

deny contains sprintf("%s %s stops or restarts the machine", [command.program, level]) if {
	some command in commands
	command.program in {"init", "telinit"}
	some level in command.args
	level in {"0", "6"}
}

deny contains sprintf("systemctl %s stops or restarts the machine", [verb]) if {
	some command in commands
	command.program == "systemctl"
	some verb in command.args
	verb in {"poweroff", "reboot", "halt", "kexec"}
}

# Gaining privileges or becoming another user.
privileged_programs := {"sudo", "su", "doas", "pkexec", "runuser"}

deny contains sprintf("%s changes user or gains privileges", [command.program]) if {
	some command in commands
	command.program in privileged_programs
}

# chmod, chown or chgrp -R on the root changes every file on the machine.
deny contains sprintf("%s -R on %q changes every file on the machine", [command.program, target]) if {
	some command in commands
	command.program in {"chmod", "chown", "chgrp"}
	owner_recursive(command.args)
	some operand in operands(command.args)
	target := normalized(operand)
	target in {"/", "/*", "/."}
}

owner_recursive(args) if "R" in short_flags(args)

owner_recursive(args) if "--recursive" in args

# The classic fork bomb, :(){ :|:& };: (white space does not matter).
deny contains "a fork bomb (:(){ ... }) would exhaust the machine's processes" if {
	some word in argv
	contains(regex.replace(word, `\s+`, ""), ":(){")
}

# Code downloaded from the network and run at once: curl or wget piped into
# a shell or an interpreter (only possible inside a -c script).
downloaders := {"curl", "wget"}

interpreters := shells | {"python", "python3", "perl", "ruby", "node", "php"}

deny contains sprintf("%s output is piped into %s: that runs code downloaded from the network", [fetch, run]) if {
	some script in scripts
	some pipeline in pipelines(script)
	stages := split(pipeline, "|")
	some i, first in stages
	some fetch in stage_programs(first)
	fetch in downloaders
	some j, later in stages
	j > i
	some run in stage_programs(later)
	run in interpreters
}

# pipelines splits a script at the separators that are not pipes; |& is a
# pipe too.
pipelines(script) := regex.split(`&&|\|\||[;&\n]`, replace(script, "|&", "|"))

stage_programs(stage) := {command.program |
	some segment in segments(stage)
	some command in commands_of(words(segment))
}

# The same through a substitution the shell executes: "$(curl ...)" as a
# command, bash <(curl ...), eval "$(wget ...)", source <(curl ...).
executes_download := concat("", [
	`(^|[;&|({]|\b(sh|bash|dash|zsh|ksh|eval|source)|(^|\s)\.|-c)`, # where the output is run
	`\s*["']?\s*`, # an optional opening quote
	"(\\$\\(|<\\(|`)\\s*(curl|wget)\\b", # $(curl, <(curl or `curl
])

deny contains "the shell runs the output of curl or wget: that runs code downloaded from the network" if {
	some script in scripts
	regex.match(executes_download, script)
}

# netcat handing a program (usually a shell) to whoever connects.
deny contains sprintf("%s %s hands a program to a network peer (a reverse or bind shell)", [command.program, flag]) if {
	some command in commands
	command.program in {"nc", "ncat", "netcat", "nc.traditional", "nc.openbsd"}
	some flag in command.args
	runs_program_on_connect(flag)
}

runs_program_on_connect(flag) if flag in {"-e", "-c", "--exec", "--sh-exec", "--lua-exec"}

runs_program_on_connect(flag) if regex.match(`^-[A-Za-z]*[ec][A-Za-z]*$`, flag)

runs_program_on_connect(flag) if regex.match(`^--(sh-|lua-)?exec=`, flag)

# Bash's /dev/tcp and /dev/udp open raw connections, the usual reverse shell.
deny contains "a /dev/tcp or /dev/udp redirection opens a raw network connection (a reverse shell)" if {
	some script in scripts
	regex.match(`/dev/(tcp|udp)/`, script)
}

# Writes to system configuration (/etc, /boot) or raw block devices.
deny contains sprintf("writing to %s is off limits: system configuration and block devices are protected", [target]) if {
	some target in write_targets
	protected(target)
}

protected(path) if normalized(path) in {"/etc", "/boot"}

protected(path) if startswith(normalized(path), "/etc/")

protected(path) if startswith(normalized(path), "/boot/")

protected(path) if regex.match(`^/dev/(sd|hd|vd|xvd|nvme|mmcblk|dm-|md)`, normalized(path))

# write_targets are the paths the call writes, changes or removes.

# Redirections in scripts: > file, >> file, 2> file, &> file, >| file.
write_targets contains target if {
	some script in scripts
	some match in regex.find_all_string_submatch_n(`[0-9&]*>>?\|?\s*([^\s;&|<>()]+)`, script, -1)
	target := unquote(match[1])
}

# Programs that write, change or remove every operand.
write_targets contains operand if {
	some command in commands
	command.program in {
		"tee", "touch", "truncate", "rm", "rmdir", "mkdir", "unlink", "shred",
		"chmod", "chown", "chgrp",
	}
	some operand in operands(command.args)
}

# Programs whose last operand is the destination.
write_targets contains destination if {
	some command in commands
	command.program in {"cp", "mv", "install", "ln", "rsync"}
	paths := operands(command.args)
	count(paths) > 1
	destination := paths[count(paths) - 1]
}

# In-place edits: sed -i, perl -pi.
write_targets contains operand if {
	some command in commands
	command.program in {"sed", "perl"}
	some flag in command.args
	in_place(flag)
	some operand in operands(command.args)
}

in_place(flag) if regex.match(`^-[A-Za-z]*i`, flag)

in_place(flag) if startswith(flag, "--in-place")

# dd of=path.
write_targets contains target if {
	some command in commands
	command.program == "dd"
	some arg in command.args
	startswith(arg, "of=")
	target := substring(arg, 3, -1)
}

//! The filter as one classic BPF program that finds a call's verdict by
//! binary search over ranges of call numbers.
//!
//! seccompiler emits one comparison per allowed call, in a chain: about 700
//! instructions here. The kernel runs a new filter for every call number
//! when it is installed (to cache the verdicts that read no argument) and
//! JIT-compiles it, so the chain cost each RUN step about a millisecond
//! before its command started; a call whose rule reads its arguments walked
//! the chain on every use. A search over the ranges (consecutive numbers
//! with one verdict) takes about ten instructions to reach any verdict.

use std::collections::BTreeMap;

use libc::sock_filter;

const BPF_LD_W_ABS: u16 = 0x20;
const BPF_ALU_AND_K: u16 = 0x04 | 0x50;
const BPF_JMP_JA: u16 = 0x05;
const BPF_JMP_JEQ_K: u16 = 0x05 | 0x10;
const BPF_JMP_JGE_K: u16 = 0x05 | 0x30;
#[cfg(test)]
const BPF_JMP_JGT_K: u16 = 0x05 | 0x20;
const BPF_RET_K: u16 = 0x06;

/// Offsets in `struct seccomp_data`.
const NR: u32 = 0;
const ARCH: u32 = 4;
const ARGS: u32 = 16;

/// What a call gets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Verdict {
    Allow,
    /// Fails with this errno.
    Errno(u32),
    /// Allowed when any rule holds, else the program's default.
    Rules(Vec<Rule>),
}

/// Conditions that must all hold.
pub(super) type Rule = Vec<Cond>;

/// A test of one argument. `Dword` tests read only its low 32 bits, as
/// seccompiler's do; a `Qword` test reads both halves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Cond {
    pub arg: u8,
    pub qword: bool,
    pub op: Op,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Op {
    Eq(u64),
    Ne(u64),
    /// Unsigned less-than (Dword only).
    Lt(u64),
    /// `arg & mask == value`.
    MaskedEq {
        mask: u64,
        value: u64,
    },
}

/// The program: calls of another architecture kill the process; each call
/// number in `calls` gets its verdict; every other number fails with `default`.
pub(super) fn program(audit_arch: u32, calls: &BTreeMap<u32, Verdict>, default: u32) -> Vec<sock_filter> {
    let deny = Verdict::Errno(default);
    // Consecutive numbers with one verdict make one range; the numbers no
    // call names (the gaps, and everything past the last) fall to `deny`.
    let mut ranges: Vec<(u32, &Verdict)> = Vec::new();
    let mut next = 0u64;
    for (&nr, verdict) in calls {
        if u64::from(nr) > next {
            add_range(&mut ranges, next as u32, &deny);
        }
        add_range(&mut ranges, nr, verdict);
        next = u64::from(nr) + 1;
    }
    if next <= u64::from(u32::MAX) {
        add_range(&mut ranges, next as u32, &deny);
    }
    let mut out = vec![
        stmt(BPF_LD_W_ABS, ARCH),
        jump(BPF_JMP_JEQ_K, audit_arch, 1, 0),
        stmt(BPF_RET_K, libc::SECCOMP_RET_KILL_PROCESS),
        stmt(BPF_LD_W_ABS, NR),
    ];
    search(&ranges, default, &mut out);
    out
}

/// Append the range starting at `start`, unless it only goes on the last
/// one. A call with argument rules is a range of its own.
fn add_range<'a>(ranges: &mut Vec<(u32, &'a Verdict)>, start: u32, verdict: &'a Verdict) {
    match ranges.last() {
        Some(&(_, last)) if last == verdict && !matches!(verdict, Verdict::Rules(_)) => {}
        _ => ranges.push((start, verdict)),
    }
}

/// The subtree for `ranges` (sorted by start; the first one's start is
/// already known to be at most the number in the accumulator).
fn search(ranges: &[(u32, &Verdict)], default: u32, out: &mut Vec<sock_filter>) {
    if let [(_, verdict)] = ranges {
        return leaf(verdict, default, out);
    }
    let mid = ranges.len() / 2;
    // nr >= start of the upper half: jump past the lower half. Conditional
    // jumps reach only 255 instructions, so the far one is an unconditional
    // jump (`ja`) right after the test.
    out.push(jump(BPF_JMP_JGE_K, ranges[mid].0, 0, 1));
    let ja = out.len();
    out.push(stmt(BPF_JMP_JA, 0));
    search(&ranges[..mid], default, out);
    out[ja].k = (out.len() - ja - 1) as u32;
    search(&ranges[mid..], default, out);
}

fn leaf(verdict: &Verdict, default: u32, out: &mut Vec<sock_filter>) {
    match verdict {
        Verdict::Allow => out.push(ret_allow()),
        Verdict::Errno(errno) => out.push(ret_errno(*errno)),
        Verdict::Rules(rules) => {
            for rule in rules {
                let tests: Vec<Vec<sock_filter>> = rule.iter().map(cond).collect();
                // Each test's failure jumps past the rest of the rule and its `ret`.
                let mut left = tests.iter().map(Vec::len).sum::<usize>() + 1;
                for mut test in tests {
                    left -= test.len();
                    let end = test.len();
                    for (i, insn) in test.iter_mut().enumerate() {
                        fix_fail(insn, (end - i - 1 + left) as u8);
                    }
                    out.extend(test);
                }
                out.push(ret_allow());
            }
            out.push(ret_errno(default));
        }
    }
}

/// A jump target of 255 stands for "the rule failed" until `fix_fail`.
const FAIL: u8 = u8::MAX;

fn fix_fail(insn: &mut sock_filter, to_end: u8) {
    if insn.jt == FAIL {
        insn.jt = to_end;
    }
    if insn.jf == FAIL {
        insn.jf = to_end;
    }
}

/// The instructions of one test, falling through when it holds and jumping
/// by [`FAIL`] when it does not (fixed by the caller).
fn cond(c: &Cond) -> Vec<sock_filter> {
    let lo = ARGS + 8 * u32::from(c.arg);
    let hi = lo + 4;
    let half = |v: u64, high: bool| if high { (v >> 32) as u32 } else { v as u32 };
    // The low half's test, and before it the high half's when `qword`.
    let mut out = Vec::new();
    let halves: &[bool] = if c.qword { &[true, false] } else { &[false] };
    for &high in halves {
        out.push(stmt(BPF_LD_W_ABS, if high { hi } else { lo }));
        match c.op {
            Op::Eq(v) => out.push(jump(BPF_JMP_JEQ_K, half(v, high), 0, FAIL)),
            Op::MaskedEq { mask, value } => {
                out.push(stmt(BPF_ALU_AND_K, half(mask, high)));
                out.push(jump(BPF_JMP_JEQ_K, half(value, high), 0, FAIL));
            }
            // Both need the halves together; no rule here tests a qword so.
            Op::Ne(v) => {
                assert!(!c.qword, "a qword != test");
                out.push(jump(BPF_JMP_JEQ_K, half(v, high), FAIL, 0));
            }
            Op::Lt(v) => {
                assert!(!c.qword, "a qword < test");
                out.push(jump(BPF_JMP_JGE_K, half(v, high), FAIL, 0));
            }
        }
    }
    out
}

fn stmt(code: u16, k: u32) -> sock_filter {
    sock_filter { code, jt: 0, jf: 0, k }
}

fn jump(code: u16, k: u32, jt: u8, jf: u8) -> sock_filter {
    sock_filter { code, jt, jf, k }
}

fn ret_allow() -> sock_filter {
    stmt(BPF_RET_K, libc::SECCOMP_RET_ALLOW)
}

fn ret_errno(errno: u32) -> sock_filter {
    stmt(BPF_RET_K, libc::SECCOMP_RET_ERRNO | (errno & libc::SECCOMP_RET_DATA))
}

/// A classic BPF interpreter for seccomp programs, enough for the tests to
/// run a program on a call as the kernel would.
#[cfg(test)]
pub(super) fn run(program: &[sock_filter], arch: u32, nr: u32, args: [u64; 6]) -> u32 {
    run_counted(program, arch, nr, args).0
}

/// [`run`], and how many instructions it took.
#[cfg(test)]
fn run_counted(program: &[sock_filter], arch: u32, nr: u32, args: [u64; 6]) -> (u32, usize) {
    let mut data = [0u8; 64];
    data[0..4].copy_from_slice(&nr.to_ne_bytes());
    data[4..8].copy_from_slice(&arch.to_ne_bytes());
    for (i, a) in args.iter().enumerate() {
        data[16 + 8 * i..24 + 8 * i].copy_from_slice(&a.to_ne_bytes());
    }
    let (mut acc, mut pc, mut steps) = (0u32, 0usize, 0usize);
    loop {
        let insn = program[pc];
        pc += 1;
        steps += 1;
        match insn.code {
            BPF_LD_W_ABS => {
                let at = insn.k as usize;
                acc = u32::from_ne_bytes(data[at..at + 4].try_into().unwrap());
            }
            BPF_ALU_AND_K => acc &= insn.k,
            BPF_JMP_JA => pc += insn.k as usize,
            BPF_JMP_JEQ_K => pc += usize::from(if acc == insn.k { insn.jt } else { insn.jf }),
            BPF_JMP_JGE_K => pc += usize::from(if acc >= insn.k { insn.jt } else { insn.jf }),
            // seccompiler's programs use it too.
            BPF_JMP_JGT_K => pc += usize::from(if acc > insn.k { insn.jt } else { insn.jf }),
            BPF_RET_K => return (insn.k, steps),
            code => panic!("instruction {code:#x} is not interpreted"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ARCH_X: u32 = 0xc000_003e;

    fn calls() -> BTreeMap<u32, Verdict> {
        let rules = vec![
            vec![Cond { arg: 0, qword: false, op: Op::Lt(12) }, Cond { arg: 0, qword: false, op: Op::Ne(2) }],
            vec![Cond { arg: 1, qword: true, op: Op::MaskedEq { mask: 0x1_0000_00f0, value: 0x10 } }],
            vec![Cond { arg: 2, qword: true, op: Op::Eq(0x2_0000_0001) }],
        ];
        let mut calls: BTreeMap<u32, Verdict> = (0..300).filter(|n| n % 7 != 3).map(|n| (n, Verdict::Allow)).collect();
        calls.insert(41, Verdict::Rules(rules));
        calls.insert(435, Verdict::Errno(libc::ENOSYS as u32));
        calls.insert(u32::MAX, Verdict::Allow);
        calls
    }

    #[test]
    fn each_number_gets_its_verdict_and_the_rest_the_default() {
        let calls = calls();
        let program = program(ARCH_X, &calls, 1);
        let (allow, eperm) = (libc::SECCOMP_RET_ALLOW, libc::SECCOMP_RET_ERRNO | 1);
        for nr in (0..1000).chain([0x4000_0000, 0x4000_0001, u32::MAX - 1, u32::MAX]) {
            let expected = match calls.get(&nr) {
                Some(Verdict::Allow) => allow,
                Some(Verdict::Errno(e)) => libc::SECCOMP_RET_ERRNO | e,
                Some(Verdict::Rules(_)) => continue,
                None => eperm,
            };
            let (verdict, steps) = run_counted(&program, ARCH_X, nr, [0; 6]);
            assert_eq!(verdict, expected, "call {nr}");
            // Searched, not walked: about 170 ranges take 8 tests (and jumps).
            assert!(steps <= 4 + 2 * 8 + 1, "call {nr} took {steps} instructions");
        }
        assert_eq!(run(&program, 0x4000_0003, 0, [0; 6]), libc::SECCOMP_RET_KILL_PROCESS);
    }

    #[test]
    fn argument_rules_hold_as_written() {
        let program = program(ARCH_X, &calls(), 1);
        let verdict = |args| run(&program, ARCH_X, 41, args) == libc::SECCOMP_RET_ALLOW;
        // Rule 1 (dword: the high half is not read).
        assert!(verdict([1, 0, 0, 0, 0, 0]));
        assert!(verdict([0x7_0000_0001, 0, 0, 0, 0, 0]));
        assert!(!verdict([2, 0, 0, 0, 0, 0]));
        assert!(!verdict([12, 0, 0, 0, 0, 0]));
        // Rule 2 (qword mask: both halves).
        assert!(verdict([20, 0x1f, 0, 0, 0, 0]));
        assert!(!verdict([20, 0x1_0000_001f, 0, 0, 0, 0]));
        assert!(!verdict([20, 0x20, 0, 0, 0, 0]));
        // Rule 3 (qword equality).
        assert!(verdict([20, 0, 0x2_0000_0001, 0, 0, 0]));
        assert!(!verdict([20, 0, 0x1, 0, 0, 0]));
        assert!(!verdict([20, 0, 0x3_0000_0001, 0, 0, 0]));
    }
}

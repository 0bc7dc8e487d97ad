//! Mistakes in a cell's CPU budget, fault supervision and control rights, and how each is
//! shown: the same three parts as every [`super::Problem`] (message, help, labels).

use crate::duration::{Duration, DurationError};
use crate::validate::{MAX_PERIOD_US, MIN_PERIOD_US};

use super::Span;

/// One of the two keys of a CPU budget.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Timing {
    /// `budget`.
    Budget,
    /// `period`.
    Period,
}

impl Timing {
    fn key(self) -> &'static str {
        match self {
            Self::Budget => "budget",
            Self::Period => "period",
        }
    }

    fn other(self) -> Timing {
        match self {
            Self::Budget => Self::Period,
            Self::Period => Self::Budget,
        }
    }
}

/// A mistake in a cell's budget, supervisor or `controls`.
#[derive(Debug)]
pub enum CellProblem {
    /// A `budget` or `period` that does not parse.
    BadDuration {
        /// The value.
        span: Span,
        /// Which key.
        timing: Timing,
        /// Why.
        reason: DurationError,
    },
    /// `budget` without `period`, or the reverse.
    Unpaired {
        /// The key that is present.
        span: Span,
        /// Which one it is.
        present: Timing,
    },
    /// A budget of zero.
    ZeroBudget {
        /// The budget.
        span: Span,
    },
    /// A period shorter than [`MIN_PERIOD_US`] or longer than [`MAX_PERIOD_US`].
    PeriodOutOfRange {
        /// The period.
        span: Span,
        /// Its value in microseconds.
        period: u64,
    },
    /// A budget longer than its period.
    BudgetExceedsPeriod {
        /// The budget.
        budget_span: Span,
        /// The period.
        period_span: Span,
        /// Budget in microseconds.
        budget: u64,
        /// Period in microseconds.
        period: u64,
    },
    /// `fault = "report"` without `supervisor`.
    ReportWithoutSupervisor {
        /// The `fault` value.
        span: Span,
        /// The cell.
        cell: String,
    },
    /// `supervisor` with another fault policy than "report".
    SupervisorWithoutReport {
        /// The `supervisor` value.
        span: Span,
        /// The `fault` value and its text, if `fault` is written.
        fault: Option<(Span, String)>,
    },
    /// A cell named as its own supervisor.
    SupervisesItself {
        /// The `supervisor` value.
        span: Span,
        /// The cell.
        cell: String,
    },
    /// A cell listed in its own `controls`.
    ControlsItself {
        /// The entry.
        span: Span,
        /// The cell.
        cell: String,
    },
    /// A cell listed twice in one `controls`.
    ControlsTwice {
        /// The first entry.
        first: Span,
        /// The second entry.
        second: Span,
        /// The cell whose list it is.
        cell: String,
        /// The cell listed twice.
        target: String,
    },
    /// A `privilege` other than "el0" or "el1", or "el0" on a guest cell.
    BadPrivilege {
        /// The value.
        span: Span,
        /// The value's text.
        value: String,
        /// Whether the cell is a guest (and the value otherwise valid).
        guest: bool,
    },
    /// An interrupt (a device's IRQ, a notification's `virtual-irq`) for a cell at EL0,
    /// which cannot take interrupts.
    InterruptAtEl0 {
        /// The interrupt.
        span: Span,
        /// What it is, e.g. "IRQ 33 of device `uart1`".
        what: String,
        /// The cell.
        cell: String,
        /// Its `privilege = "el0"`.
        privilege: Span,
        /// Whether the interrupt is a notification's (else a device's).
        notification: bool,
    },
}

impl CellProblem {
    /// What is wrong, in one sentence.
    pub fn message(&self) -> String {
        match self {
            Self::BadDuration { timing, reason, .. } => {
                format!("invalid {}: {reason}", timing.key())
            }
            Self::Unpaired { present, .. } => format!(
                "`{}` is set without `{}`",
                present.key(),
                present.other().key()
            ),
            Self::ZeroBudget { .. } => "budget is zero".to_string(),
            Self::PeriodOutOfRange { period, .. } => format!(
                "period {} is too {}",
                Duration(*period),
                if *period < MIN_PERIOD_US {
                    "short"
                } else {
                    "long"
                }
            ),
            Self::BudgetExceedsPeriod { budget, period, .. } => format!(
                "budget {} exceeds its period {}",
                Duration(*budget),
                Duration(*period)
            ),
            Self::ReportWithoutSupervisor { cell, .. } => {
                format!("cell `{cell}` reports its faults but names no supervisor")
            }
            Self::SupervisorWithoutReport { .. } => {
                "`supervisor` is set but the fault policy is not \"report\"".to_string()
            }
            Self::SupervisesItself { cell, .. } => format!("cell `{cell}` supervises itself"),
            Self::ControlsItself { cell, .. } => {
                format!("cell `{cell}` lists itself in `controls`")
            }
            Self::ControlsTwice { cell, target, .. } => {
                format!("cell `{cell}` lists `{target}` twice in `controls`")
            }
            Self::BadPrivilege { value, guest, .. } => match guest {
                true => "a guest cell cannot run at EL0".to_string(),
                false => format!("unknown privilege `{value}`"),
            },
            Self::InterruptAtEl0 { what, cell, .. } => {
                format!("{what} goes to cell `{cell}`, which runs at EL0 and takes no interrupts")
            }
        }
    }

    /// How to fix it.
    pub fn help(&self) -> String {
        let range = format!("{} to {}", Duration(MIN_PERIOD_US), Duration(MAX_PERIOD_US));
        match self {
            Self::BadDuration { .. } => {
                "write a whole number with a unit `us`, `ms` or `s`: \"500 us\", \"2 ms\", \"1 s\""
                    .to_string()
            }
            Self::Unpaired { .. } => "set both `budget` and `period` (budget = \"2 ms\", period = \"10 ms\"), or neither for an unlimited cell".to_string(),
            Self::ZeroBudget { .. } => "give the cell some CPU time per period, or remove `budget` and `period` to leave it unlimited".to_string(),
            Self::PeriodOutOfRange { .. } => format!("use a period from {range}"),
            Self::BudgetExceedsPeriod { .. } => {
                "lower `budget` to at most the period, or lengthen `period`".to_string()
            }
            Self::ReportWithoutSupervisor { .. } => "add `supervisor = \"<cell>\"`, the cell that receives the fault reports and decides on a restart".to_string(),
            Self::SupervisorWithoutReport { .. } => {
                "remove `supervisor`, or set `fault = \"report\"`".to_string()
            }
            Self::SupervisesItself { .. } => "name another cell: a faulted cell is stopped and cannot handle its own fault report".to_string(),
            Self::ControlsItself { .. } => {
                "remove it: `controls` lists the other cells this cell may stop, start and restart".to_string()
            }
            Self::ControlsTwice { .. } => "remove the second entry".to_string(),
            Self::BadPrivilege { guest: true, .. } => "remove `privilege`: a guest's kernel runs at EL1".to_string(),
            Self::BadPrivilege { guest: false, .. } => "use \"el0\" (no interrupts, the cheapest IPC and switches) or \"el1\" (the default)".to_string(),
            Self::InterruptAtEl0 { notification: true, .. } => "remove `virtual-irq` (the cell then receives the bits with a notification wait), or remove `privilege = \"el0\"`".to_string(),
            Self::InterruptAtEl0 { notification: false, .. } => "remove `privilege = \"el0\"`: a driver that takes its device's interrupts runs at EL1".to_string(),
        }
    }

    /// The underlined spans, the first being the primary one.
    pub fn labels(&self) -> Vec<(Span, String)> {
        match self {
            Self::BadDuration { span, reason, .. } => vec![(span.clone(), reason.to_string())],
            Self::Unpaired { span, present } => vec![(
                span.clone(),
                format!("no `{}` goes with it", present.other().key()),
            )],
            Self::ZeroBudget { span } => vec![(span.clone(), "zero".to_string())],
            Self::PeriodOutOfRange { span, .. } => vec![(
                span.clone(),
                format!(
                    "must be {} to {}",
                    Duration(MIN_PERIOD_US),
                    Duration(MAX_PERIOD_US)
                ),
            )],
            Self::BudgetExceedsPeriod {
                budget_span,
                period_span,
                budget,
                period,
            } => vec![
                (
                    budget_span.clone(),
                    format!("{} per period", Duration(*budget)),
                ),
                (
                    period_span.clone(),
                    format!("the period is {}", Duration(*period)),
                ),
            ],
            Self::ReportWithoutSupervisor { span, .. } => {
                vec![(span.clone(), "needs a `supervisor`".to_string())]
            }
            Self::SupervisorWithoutReport { span, fault } => match fault {
                Some((fault_span, policy)) => vec![
                    (
                        span.clone(),
                        "only used with fault = \"report\"".to_string(),
                    ),
                    (
                        fault_span.clone(),
                        format!("the fault policy is {policy:?}"),
                    ),
                ],
                None => vec![(
                    span.clone(),
                    "only used with fault = \"report\", but `fault` defaults to \"stop\""
                        .to_string(),
                )],
            },
            Self::SupervisesItself { span, .. } | Self::ControlsItself { span, .. } => {
                vec![(span.clone(), "the cell itself".to_string())]
            }
            Self::ControlsTwice { first, second, .. } => vec![
                (second.clone(), "listed again here".to_string()),
                (first.clone(), "first listed here".to_string()),
            ],
            Self::BadPrivilege { span, guest, .. } => vec![(
                span.clone(),
                match guest {
                    true => "only for native cells",
                    false => "not \"el0\" or \"el1\"",
                }
                .to_string(),
            )],
            Self::InterruptAtEl0 {
                span, privilege, ..
            } => vec![
                (span.clone(), "an interrupt".to_string()),
                (privilege.clone(), "runs at EL0".to_string()),
            ],
        }
    }
}

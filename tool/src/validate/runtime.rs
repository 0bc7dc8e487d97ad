//! A cell's run-time rules: its CPU budget, who receives its fault reports, and which
//! other cells it may control. Budget checks run per cell; supervisor and `controls` checks
//! need every cell's name and run once all cells are known.

use std::collections::HashMap;

use abi::plan::FaultPolicy;
use toml::Spanned;

use super::{Checker, MAX_PERIOD_US, MIN_PERIOD_US};
use crate::duration::{parse_duration, DurationError};
use crate::problem::{CellProblem, Problem, Reference, Span, Timing};
use crate::raw::{RawCell, RawDuration};
use crate::system::Budget;

impl Checker {
    fn duration(&mut self, value: &Spanned<RawDuration>, timing: Timing) -> Option<u64> {
        let parsed = match value.get_ref() {
            RawDuration::Number(number) if *number < 0 => Err(DurationError::Negative),
            RawDuration::Number(_) => Err(DurationError::MissingUnit),
            RawDuration::Text(text) => parse_duration(text),
        };
        parsed
            .map_err(|reason| {
                self.report(Problem::Cell(CellProblem::BadDuration {
                    span: value.span(),
                    timing,
                    reason,
                }))
            })
            .ok()
    }

    /// The cell's CPU budget: `Some(None)` when it has none.
    pub(super) fn budget(&mut self, cell: &RawCell) -> Option<Option<Budget>> {
        let budget = cell
            .budget
            .as_ref()
            .map(|value| (value.span(), self.duration(value, Timing::Budget)));
        let period = cell
            .period
            .as_ref()
            .map(|value| (value.span(), self.duration(value, Timing::Period)));
        let (budget_span, budget, period_span, period) = match (budget, period) {
            (None, None) => return Some(None),
            (Some((span, _)), None) | (None, Some((span, _))) => {
                let present = if cell.budget.is_some() {
                    Timing::Budget
                } else {
                    Timing::Period
                };
                self.report(Problem::Cell(CellProblem::Unpaired { span, present }));
                return None;
            }
            (Some((budget_span, budget)), Some((period_span, period))) => {
                (budget_span, budget, period_span, period)
            }
        };
        let budget = budget.filter(|&budget| {
            if budget == 0 {
                self.report(Problem::Cell(CellProblem::ZeroBudget {
                    span: budget_span.clone(),
                }));
            }
            budget != 0
        });
        let period = period.filter(|&period| {
            let in_range = (MIN_PERIOD_US..=MAX_PERIOD_US).contains(&period);
            if !in_range {
                self.report(Problem::Cell(CellProblem::PeriodOutOfRange {
                    span: period_span.clone(),
                    period,
                }));
            }
            in_range
        });
        let (budget, period) = (budget?, period?);
        if budget > period {
            self.report(Problem::Cell(CellProblem::BudgetExceedsPeriod {
                budget_span,
                period_span,
                budget,
                period,
            }));
            return None;
        }
        // period <= MAX_PERIOD_US fits in 32 bits, and budget <= period.
        Some(Some(Budget {
            budget_us: budget as u32,
            period_us: period as u32,
        }))
    }

    /// The index of the cell's supervisor (`Some(None)`: it has none). `policy` is `None`
    /// when the fault policy was wrong, which skips the pairing check.
    pub(super) fn supervisor(
        &mut self,
        cell: &RawCell,
        index: usize,
        policy: Option<FaultPolicy>,
        cells: &HashMap<String, usize>,
        known: &[String],
    ) -> Option<Option<usize>> {
        let name = cell.name.get_ref();
        let supervisor = match &cell.supervisor {
            None => None,
            Some(value) => {
                let reference = Reference::Supervisor(name.clone());
                let found = self.cell_ref(value, reference, cells, known);
                if found == Some(index) {
                    self.report(Problem::Cell(CellProblem::SupervisesItself {
                        span: value.span(),
                        cell: name.clone(),
                    }));
                    return None;
                }
                Some((value.span(), found))
            }
        };
        match (policy?, supervisor, &cell.fault) {
            (FaultPolicy::Report, Some((_, found)), _) => found.map(Some),
            (FaultPolicy::Report, None, Some(fault)) => {
                self.report(Problem::Cell(CellProblem::ReportWithoutSupervisor {
                    span: fault.span(),
                    cell: name.clone(),
                }));
                None
            }
            (_, None, _) => Some(None),
            (_, Some((span, _)), fault) => {
                let fault = fault
                    .as_ref()
                    .map(|fault| (fault.span(), fault.get_ref().clone()));
                self.report(Problem::Cell(CellProblem::SupervisorWithoutReport {
                    span,
                    fault,
                }));
                None
            }
        }
    }

    /// The indices of the cells listed in the cell's `controls`.
    pub(super) fn controls(
        &mut self,
        cell: &RawCell,
        index: usize,
        cells: &HashMap<String, usize>,
        known: &[String],
    ) -> Option<Vec<usize>> {
        let Some(list) = &cell.controls else {
            return Some(Vec::new());
        };
        let name = cell.name.get_ref();
        let mut listed: Vec<(usize, Span)> = Vec::new();
        let mut ok = true;
        for entry in list.get_ref() {
            let reference = Reference::Controls(name.clone());
            let Some(target) = self.cell_ref(entry, reference, cells, known) else {
                ok = false;
                continue;
            };
            if target == index {
                self.report(Problem::Cell(CellProblem::ControlsItself {
                    span: entry.span(),
                    cell: name.clone(),
                }));
                ok = false;
            } else if let Some((_, first)) = listed.iter().find(|(seen, _)| *seen == target) {
                self.report(Problem::Cell(CellProblem::ControlsTwice {
                    first: first.clone(),
                    second: entry.span(),
                    cell: name.clone(),
                    target: entry.get_ref().clone(),
                }));
                ok = false;
            } else {
                listed.push((target, entry.span()));
            }
        }
        ok.then(|| listed.into_iter().map(|(target, _)| target).collect())
    }
}

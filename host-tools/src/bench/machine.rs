//! The machine a benchmark ran on: absolute times only compare on the same one.
use serde_json::{Value, json};

use crate::run::Cmd;
use crate::vm::{Accel, QEMU};

#[derive(Clone, Debug)]
pub struct Machine {
    pub cpu_model: String,
    /// Logical CPUs the host has.
    pub cores: usize,
    pub memory_mib: u64,
    pub host_kernel: String,
    pub qemu_version: String,
    pub accelerator: Accel,
    /// `/proc/loadavg` when the run started and when it ended: other work on
    /// the machine makes TCG times noisy.
    pub load_start: String,
    pub load_end: String,
}

impl Machine {
    /// Reads `/proc` and asks QEMU its version. `accelerator` is the one the
    /// boots used.
    pub fn describe(accelerator: Accel) -> Machine {
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
        let qemu_version = Cmd::new(QEMU)
            .arg("--version")
            .read()
            .ok()
            .and_then(|s| s.lines().next().map(str::to_string))
            .unwrap_or_else(|| "unknown".into());
        Machine {
            cpu_model: cpu_model(&cpuinfo).unwrap_or_else(|| "unknown".into()),
            cores: std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1),
            memory_mib: mem_total_kib(&meminfo).unwrap_or(0) / 1024,
            host_kernel: std::fs::read_to_string("/proc/sys/kernel/osrelease")
                .map(|s| s.trim().to_string())
                .unwrap_or_else(|_| "unknown".into()),
            qemu_version,
            accelerator,
            load_start: load_average(),
            load_end: String::new(),
        }
    }

    pub fn accel_name(&self) -> &'static str {
        self.accelerator.name()
    }

    /// One line for reports.
    pub fn summary(&self) -> String {
        format!(
            "{}, {} cores, {} MiB RAM, Linux {}, {}, accelerator {}",
            self.cpu_model,
            self.cores,
            self.memory_mib,
            self.host_kernel,
            self.qemu_version,
            self.accel_name()
        )
    }

    pub fn json(&self) -> Value {
        json!({
            "cpu_model": self.cpu_model,
            "cores": self.cores,
            "memory_mib": self.memory_mib,
            "host_kernel": self.host_kernel,
            "qemu_version": self.qemu_version,
            "accelerator": self.accel_name(),
            "load_average_start": self.load_start,
            "load_average_end": self.load_end,
        })
    }
}

/// The first `model name` of `/proc/cpuinfo`.
pub fn cpu_model(cpuinfo: &str) -> Option<String> {
    cpuinfo
        .lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split_once(':'))
        .map(|(_, v)| v.trim().to_string())
}

fn mem_total_kib(meminfo: &str) -> Option<u64> {
    meminfo
        .lines()
        .find(|l| l.starts_with("MemTotal:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

/// The three load averages of `/proc/loadavg`.
pub fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_proc() {
        let cpuinfo = "processor\t: 0\nmodel name\t: Intel(R) Xeon(R) Processor\n";
        assert_eq!(
            cpu_model(cpuinfo).as_deref(),
            Some("Intel(R) Xeon(R) Processor")
        );
        assert_eq!(
            mem_total_kib("MemTotal:       24732356 kB\n"),
            Some(24_732_356)
        );
    }
}

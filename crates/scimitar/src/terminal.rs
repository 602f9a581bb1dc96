//! Reading secrets from the terminal, and writing command output.

use std::io::{BufRead, IsTerminal, Write};

/// Prints a line of command output to stdout, like `println!`, but a
/// reader that went away (`scimitar activity … | head`) ends the command
/// quietly with exit code 0 instead of a panic.
macro_rules! out {
    () => {
        $crate::terminal::write_stdout(format_args!("\n"))
    };
    ($($arg:tt)*) => {
        $crate::terminal::write_stdout(format_args!("{}\n", format_args!($($arg)*)))
    };
}

/// Like [`out!`] without the newline.
macro_rules! out_raw {
    ($($arg:tt)*) => {
        $crate::terminal::write_stdout(format_args!($($arg)*))
    };
}

/// Writes to stdout; on a closed pipe the process exits quietly (0), on
/// any other error with the error and exit code 1.
pub fn write_stdout(args: std::fmt::Arguments<'_>) {
    let mut stdout = std::io::stdout().lock();
    if let Err(e) = stdout.write_fmt(args).and_then(|()| stdout.flush()) {
        exit_on_write_error(&e);
    }
}

/// Ends the process after a failed write to stdout.
pub fn exit_on_write_error(e: &std::io::Error) -> ! {
    if e.kind() == std::io::ErrorKind::BrokenPipe {
        std::process::exit(0);
    }
    eprintln!("error: writing to standard output: {e}");
    std::process::exit(1)
}

/// Whether an error comes from writing to a reader that went away.
pub fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

/// Reads a password from the terminal without echo (asking twice), or
/// when stdin is not a terminal, from its first line. Never from an
/// argument: those end up in shell history and process listings.
pub fn read_password() -> Result<String, String> {
    if std::io::stdin().is_terminal() {
        let first = rpassword::prompt_password("Password: ").map_err(|e| e.to_string())?;
        let again = rpassword::prompt_password("Repeat the password: ").map_err(|e| e.to_string())?;
        if first != again {
            return Err("the passwords differ".into());
        }
        Ok(first)
    } else {
        let mut line = String::new();
        std::io::stdin()
            .lock()
            .read_line(&mut line)
            .map_err(|e| e.to_string())?;
        Ok(line.trim_end_matches(['\r', '\n']).to_string())
    }
}

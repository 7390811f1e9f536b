//! The expand/contract guard: destructive schema changes found in a release's migration files.
//!
//! While a release rolls out, the old release keeps serving against the same database, so a migration
//! must not break the old code: expand first (add nullable columns, new tables), contract in a later
//! release. These statements break the release that is still running, and are reported before the
//! release phase runs (`slipway deploy` warns; `--strict` refuses). The scan is textual and deliberately
//! simple: it reads SQL the way a reviewer skims it, statement by statement, ignoring comments and case.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Rule {
    /// The old release still reads and writes the table.
    DropTable,
    /// The old release still selects or inserts the column.
    DropColumn,
    /// The old release still uses the old name.
    RenameColumn,
    RenameTable,
    /// The old release inserts rows without the column, which now fails.
    NotNullWithoutDefault,
}

impl Rule {
    pub fn explain(self) -> &'static str {
        match self {
            Rule::DropTable => {
                "DROP TABLE: the release still serving uses this table; drop it in a later release, once no running code reads it"
            }
            Rule::DropColumn => {
                "DROP COLUMN: the release still serving reads or writes this column; stop using it first, drop it in a later release"
            }
            Rule::RenameColumn => {
                "RENAME COLUMN: the release still serving uses the old name; add the new column, write both, then drop the old one later"
            }
            Rule::RenameTable => {
                "RENAME TABLE: the release still serving uses the old name; copy or view it under the new name, drop the old one later"
            }
            Rule::NotNullWithoutDefault => {
                "NOT NULL without DEFAULT: the release still serving inserts rows without this column; add it nullable or with a DEFAULT"
            }
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Finding {
    /// 1-based line where the statement starts.
    pub line: usize,
    pub rule: Rule,
    /// The statement, whitespace collapsed, cut at 120 characters.
    pub statement: String,
}

/// Every destructive statement in one SQL file's text.
pub fn scan(sql: &str) -> Vec<Finding> {
    let mut findings = Vec::new();
    for (line, statement) in statements(sql) {
        let words: Vec<String> = statement
            .split(|c: char| c.is_whitespace() || c == '(' || c == ')' || c == ',')
            .filter(|w| !w.is_empty())
            .map(|w| w.to_ascii_uppercase())
            .collect();
        for rule in rules_of(&words) {
            findings.push(Finding {
                line,
                rule,
                statement: shorten(&statement),
            });
        }
    }
    findings
}

fn rules_of(w: &[String]) -> Vec<Rule> {
    let has = |seq: &[&str]| {
        w.windows(seq.len())
            .any(|win| win.iter().zip(seq).all(|(a, b)| a == b))
    };
    let mut rules = Vec::new();
    if has(&["DROP", "TABLE"]) {
        rules.push(Rule::DropTable);
    }
    let alter_table = has(&["ALTER", "TABLE"]);
    // `ALTER TABLE t DROP c` drops a column too (the COLUMN keyword is optional in PostgreSQL and MySQL).
    let drops_column = has(&["DROP", "COLUMN"])
        || (alter_table
            && w.windows(2).any(|p| {
                p[0] == "DROP"
                    && !matches!(
                        p[1].as_str(),
                        "CONSTRAINT"
                            | "INDEX"
                            | "KEY"
                            | "DEFAULT"
                            | "NOT"
                            | "PRIMARY"
                            | "FOREIGN"
                            | "CHECK"
                            | "TABLE"
                            | "COLUMN"
                            | "IDENTITY"
                            | "EXPRESSION"
                    )
            }));
    if drops_column {
        rules.push(Rule::DropColumn);
    }
    if has(&["RENAME", "COLUMN"]) {
        rules.push(Rule::RenameColumn);
    } else if alter_table && has(&["RENAME", "TO"]) {
        rules.push(Rule::RenameTable);
    } else if alter_table
        && w.windows(4)
            .any(|p| p[0] == "RENAME" && p[2] == "TO" && p[1] != "CONSTRAINT" && p[1] != "INDEX")
    {
        rules.push(Rule::RenameColumn);
    }
    if has(&["RENAME", "TABLE"]) {
        rules.push(Rule::RenameTable);
    }
    let not_null = has(&["NOT", "NULL"]);
    let adds_column = alter_table && has(&["ADD"]) && !has(&["ADD", "CONSTRAINT"]);
    if (adds_column && not_null && !has(&["DEFAULT"])) || has(&["SET", "NOT", "NULL"]) {
        rules.push(Rule::NotNullWithoutDefault);
    }
    rules
}

/// Splits SQL into statements at `;`, dropping `--` and `/* */` comments and skipping quoted text.
fn statements(sql: &str) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    let mut current = String::new();
    let mut start_line = 1;
    let mut line = 1;
    let mut chars = sql.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\n' => {
                line += 1;
                current.push(' ');
            }
            '-' if chars.peek() == Some(&'-') => {
                for c in chars.by_ref() {
                    if c == '\n' {
                        line += 1;
                        current.push(' ');
                        break;
                    }
                }
            }
            '/' if chars.peek() == Some(&'*') => {
                chars.next();
                let mut prev = ' ';
                for c in chars.by_ref() {
                    if c == '\n' {
                        line += 1;
                    }
                    if prev == '*' && c == '/' {
                        break;
                    }
                    prev = c;
                }
                current.push(' ');
            }
            '\'' | '"' | '`' => {
                // Quoted text is kept out of the words, so a string saying "DROP TABLE" is not a finding;
                // quoted identifiers become a placeholder word.
                for q in chars.by_ref() {
                    if q == '\n' {
                        line += 1;
                    }
                    if q == c {
                        break;
                    }
                }
                current.push_str(if c == '\'' { " 'text' " } else { " ident " });
            }
            ';' => {
                if !current.trim().is_empty() {
                    out.push((start_line, std::mem::take(&mut current)));
                }
                current.clear();
                start_line = line;
            }
            c => {
                if current.trim().is_empty() && !c.is_whitespace() {
                    start_line = line;
                }
                current.push(c);
            }
        }
    }
    if !current.trim().is_empty() {
        out.push((start_line, current));
    }
    out
}

fn shorten(statement: &str) -> String {
    let collapsed = statement.split_whitespace().collect::<Vec<_>>().join(" ");
    if collapsed.chars().count() > 120 {
        let cut: String = collapsed.chars().take(117).collect();
        format!("{cut}...")
    } else {
        collapsed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules(sql: &str) -> Vec<Rule> {
        scan(sql).into_iter().map(|f| f.rule).collect()
    }

    #[test]
    fn destructive_statements_are_found() {
        assert_eq!(rules("DROP TABLE users;"), [Rule::DropTable]);
        assert_eq!(
            rules("alter table users drop column email;"),
            [Rule::DropColumn]
        );
        assert_eq!(rules("ALTER TABLE users DROP email"), [Rule::DropColumn]);
        assert_eq!(
            rules("ALTER TABLE users RENAME COLUMN email TO mail;"),
            [Rule::RenameColumn]
        );
        assert_eq!(
            rules("ALTER TABLE users RENAME email TO mail"),
            [Rule::RenameColumn]
        );
        assert_eq!(
            rules("ALTER TABLE users RENAME TO people"),
            [Rule::RenameTable]
        );
        assert_eq!(rules("RENAME TABLE users TO people"), [Rule::RenameTable]);
        assert_eq!(
            rules("ALTER TABLE users ADD COLUMN age int NOT NULL;"),
            [Rule::NotNullWithoutDefault]
        );
        assert_eq!(
            rules("ALTER TABLE users ALTER COLUMN age SET NOT NULL"),
            [Rule::NotNullWithoutDefault]
        );
    }

    #[test]
    fn expand_steps_are_fine() {
        for ok in [
            "CREATE TABLE users (id int NOT NULL, email text NOT NULL);",
            "ALTER TABLE users ADD COLUMN age int;",
            "ALTER TABLE users ADD COLUMN age int NOT NULL DEFAULT 0;",
            "ALTER TABLE users DROP CONSTRAINT users_email_key;",
            "ALTER TABLE users ALTER COLUMN age DROP DEFAULT;",
            "ALTER TABLE users ALTER COLUMN age DROP NOT NULL;",
            "CREATE INDEX users_email ON users (email);",
            "INSERT INTO notes VALUES ('DROP TABLE users');",
            "-- DROP TABLE users;\nSELECT 1;",
            "/* ALTER TABLE users DROP COLUMN email; */ SELECT 1;",
            "ALTER TABLE users ADD CONSTRAINT c CHECK (age IS NOT NULL);",
        ] {
            assert!(rules(ok).is_empty(), "{ok}: {:?}", scan(ok));
        }
    }

    #[test]
    fn findings_name_the_line() {
        let sql =
            "CREATE TABLE a (id int);\n\n-- contract\nALTER TABLE users\n  DROP COLUMN email;\n";
        let found = scan(sql);
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].line, 4);
        assert_eq!(found[0].statement, "ALTER TABLE users DROP COLUMN email");
    }
}

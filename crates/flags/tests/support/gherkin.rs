//! The part of Gherkin that flagd's testbed uses: Feature, Background, Scenario, Scenario Outline with
//! Examples (tagged per block), steps with an optional data table, tags and comments.

/// One runnable scenario; an outline gives one per Examples row, with `<placeholders>` filled in.
#[derive(Debug, Clone)]
pub struct Scenario {
    pub name: String,
    pub tags: Vec<String>,
    pub steps: Vec<Step>,
}

#[derive(Debug, Clone)]
pub struct Step {
    pub text: String,
    /// The data table under the step, as rows of cells (header first).
    pub table: Vec<Vec<String>>,
}

#[derive(Default)]
struct Outline {
    name: String,
    tags: Vec<String>,
    steps: Vec<Step>,
    is_outline: bool,
    examples: Vec<(Vec<String>, Vec<Vec<String>>)>,
}

enum Section {
    None,
    Background,
    Scenario,
    Examples,
}

pub fn parse(text: &str) -> Vec<Scenario> {
    let mut feature_tags = Vec::new();
    let mut pending_tags: Vec<String> = Vec::new();
    let mut background: Vec<Step> = Vec::new();
    let mut outlines: Vec<Outline> = Vec::new();
    let mut section = Section::None;

    for raw in text.lines() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if line.starts_with('@') {
            pending_tags.extend(line.split_whitespace().map(str::to_string));
        } else if line.starts_with("Feature:") {
            feature_tags = std::mem::take(&mut pending_tags);
        } else if line.starts_with("Background:") {
            section = Section::Background;
        } else if let Some(name) = line
            .strip_prefix("Scenario Outline:")
            .or_else(|| line.strip_prefix("Scenario:"))
        {
            let mut tags = feature_tags.clone();
            tags.append(&mut pending_tags);
            let is_outline = line.starts_with("Scenario Outline:");
            outlines.push(Outline {
                name: name.trim().to_string(),
                tags,
                steps: background.clone(),
                is_outline,
                ..Default::default()
            });
            section = Section::Scenario;
        } else if line.starts_with("Examples:") {
            let outline = outlines.last_mut().expect("Examples outside a scenario");
            outline
                .examples
                .push((std::mem::take(&mut pending_tags), Vec::new()));
            section = Section::Examples;
        } else if line.starts_with('|') {
            let row = cells(line);
            match section {
                Section::Examples => outlines
                    .last_mut()
                    .unwrap()
                    .examples
                    .last_mut()
                    .unwrap()
                    .1
                    .push(row),
                Section::Scenario => outlines
                    .last_mut()
                    .unwrap()
                    .steps
                    .last_mut()
                    .expect("table without a step")
                    .table
                    .push(row),
                Section::Background => background
                    .last_mut()
                    .expect("table without a step")
                    .table
                    .push(row),
                Section::None => panic!("table outside a scenario: {line}"),
            }
        } else {
            let step = Step {
                text: step_text(line),
                table: Vec::new(),
            };
            match section {
                Section::Background => background.push(step),
                Section::Scenario => outlines.last_mut().unwrap().steps.push(step),
                _ => panic!("step outside a scenario: {line}"),
            }
        }
    }
    outlines.into_iter().flat_map(expand).collect()
}

fn expand(outline: Outline) -> Vec<Scenario> {
    if !outline.is_outline {
        return vec![Scenario {
            name: outline.name,
            tags: outline.tags,
            steps: outline.steps,
        }];
    }
    let mut scenarios = Vec::new();
    for (example_tags, table) in &outline.examples {
        let Some((header, rows)) = table.split_first() else {
            continue;
        };
        for row in rows {
            let fill = |text: &str| {
                header
                    .iter()
                    .zip(row)
                    .fold(text.to_string(), |text, (name, value)| {
                        text.replace(&format!("<{name}>"), value)
                    })
            };
            let steps = outline
                .steps
                .iter()
                .map(|step| Step {
                    text: fill(&step.text),
                    table: step.table.clone(),
                })
                .collect();
            let mut tags = outline.tags.clone();
            tags.extend(example_tags.iter().cloned());
            scenarios.push(Scenario {
                name: format!("{} [{}]", outline.name, row.join(", ")),
                tags,
                steps,
            });
        }
    }
    scenarios
}

/// The step without its keyword.
fn step_text(line: &str) -> String {
    for keyword in ["Given ", "When ", "Then ", "And ", "But ", "* "] {
        if let Some(rest) = line.strip_prefix(keyword) {
            return rest.to_string();
        }
    }
    panic!("not a step: {line}");
}

/// Table cells, trimmed, with Gherkin's `\|` and `\\` escapes undone (other escapes stay as written).
fn cells(line: &str) -> Vec<String> {
    let inner = line.trim().trim_start_matches('|');
    let mut cells = Vec::new();
    let mut cell = String::new();
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some('|') => cell.push('|'),
                Some('\\') => cell.push('\\'),
                Some('n') => cell.push('\n'),
                Some(other) => {
                    cell.push('\\');
                    cell.push(other);
                }
                None => cell.push('\\'),
            },
            '|' => cells.push(std::mem::take(&mut cell).trim().to_string()),
            c => cell.push(c),
        }
    }
    cells
}

/// The `"quoted"` arguments of a step, with `\"` unescaped (Cucumber's `{string}`).
pub fn quoted(text: &str) -> Vec<String> {
    let mut args = Vec::new();
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c != '"' {
            continue;
        }
        let mut arg = String::new();
        while let Some(c) = chars.next() {
            match c {
                '\\' => match chars.next() {
                    Some('"') => arg.push('"'),
                    Some(other) => {
                        arg.push('\\');
                        arg.push(other);
                    }
                    None => {}
                },
                '"' => break,
                c => arg.push(c),
            }
        }
        args.push(arg);
    }
    args
}

/// Counts scenarios with a plain line scan, independently of [`parse`], so that a parser bug cannot
/// make the conformance test run fewer scenarios than the files hold without noticing. Returns
/// (all scenarios, those tagged `skip_tag`).
pub fn count_scenarios(text: &str, skip_tag: &str) -> (usize, usize) {
    let (mut total, mut skipped) = (0, 0);
    let mut tags = String::new();
    let mut outline_tagged = false;
    let mut examples: Option<(bool, bool)> = None; // (tagged, header seen)
    for line in text.lines().map(str::trim) {
        if line.starts_with('|') {
            if let Some((tagged, header_seen)) = examples.as_mut() {
                if *header_seen {
                    total += 1;
                    skipped += usize::from(*tagged);
                }
                *header_seen = true;
            }
            continue;
        }
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        examples = None;
        if line.starts_with('@') {
            tags.push_str(line);
            tags.push(' ');
            continue;
        }
        let tagged = tags.split_whitespace().any(|tag| tag == skip_tag);
        if line.starts_with("Scenario:") {
            total += 1;
            skipped += usize::from(tagged);
        } else if line.starts_with("Scenario Outline:") {
            outline_tagged = tagged;
        } else if line.starts_with("Examples:") {
            examples = Some((tagged || outline_tagged, false));
        }
        tags.clear();
    }
    (total, skipped)
}

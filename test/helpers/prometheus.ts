/**
 * @module
 * A strict reader of the Prometheus text exposition format (version 0.0.4), for tests: every
 * line must be a `# HELP`, a `# TYPE`, a sample `name{labels} value [timestamp]` or empty (the
 * format ignores empty lines; prom-client puts one between families); families are
 * declared before their samples and never interleaved; histograms have a `+Inf` bucket equal to
 * their `_count`. It throws on the first line that breaks a rule, naming the line.
 */

/** A parsed sample. */
export interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/** A metric family: its HELP, TYPE and samples. */
export interface Family {
  name: string;
  help?: string;
  type?: string;
  samples: Sample[];
}

const NAME = '[a-zA-Z_:][a-zA-Z0-9_:]*';
const LABEL = '[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\\\\n]|\\\\[\\\\"n])*"';
const FLOAT = '[+-]?(?:\\d+(?:\\.\\d*)?|\\.\\d+)(?:[eE][+-]?\\d+)?|[+-]?Inf|NaN';
const SAMPLE = new RegExp(
  `^(${NAME})(?:\\{((?:${LABEL})(?:,${LABEL})*,?)?\\})? (${FLOAT})(?: (-?\\d+))?$`,
);
const HELP = new RegExp(`^# HELP (${NAME}) ((?:[^\\\\\\n]|\\\\[\\\\n])*)$`);
const TYPE = new RegExp(`^# TYPE (${NAME}) (counter|gauge|histogram|summary|untyped)$`);
const LABEL_PAIR = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\\n]|\\[\\"n])*)"/g;

/** Parses `text`, checking every line; returns the families by name. */
export function parseExposition(text: string): Map<string, Family> {
  const families = new Map<string, Family>();
  const seen = new Set<string>();
  let current: Family | undefined;
  if (!text.endsWith('\n')) throw new Error('the exposition must end with a line feed');
  text.split('\n').forEach((line, i) => {
    const fail = (why: string): never => {
      throw new Error(`line ${i + 1} ${why}: ${JSON.stringify(line)}`);
    };
    if (line === '') return;
    const help = HELP.exec(line);
    const type = TYPE.exec(line);
    if (help || type) {
      const name = (help?.[1] ?? type?.[1]) as string;
      const family = families.get(name) ?? { name, samples: [] };
      if (family.samples.length > 0) fail('declares a family after its samples');
      if (help) {
        if (family.help !== undefined) fail('repeats HELP');
        family.help = help[2];
      } else {
        if (family.type !== undefined) fail('repeats TYPE');
        family.type = type?.[2];
      }
      families.set(name, family);
      current = family;
      return;
    }
    if (line.startsWith('#')) fail('is a comment that is neither HELP nor TYPE');
    const sample = SAMPLE.exec(line);
    if (!sample) fail('is not a valid sample line');
    const name = sample?.[1] as string;
    const family = familyOf(name, families);
    if (!family) fail('has no TYPE declared for its family');
    if (family !== current) fail('interleaves with another family');
    const labels = Object.fromEntries(
      [...(sample?.[2] ?? '').matchAll(LABEL_PAIR)].map((m) => [m[1], m[2]]),
    );
    const key = `${name}${JSON.stringify(Object.entries(labels).sort())}`;
    if (seen.has(key)) fail('repeats a series');
    seen.add(key);
    family?.samples.push({ name, labels, value: parseValue(sample?.[3] as string) });
  });
  for (const family of families.values()) checkHistogram(family);
  return families;
}

function familyOf(name: string, families: Map<string, Family>): Family | undefined {
  const exact = families.get(name);
  if (exact) return exact;
  const base = name.replace(/_(bucket|sum|count)$/, '');
  const family = families.get(base);
  return family && (family.type === 'histogram' || family.type === 'summary') ? family : undefined;
}

function parseValue(text: string): number {
  if (text.endsWith('Inf')) return text.startsWith('-') ? -Infinity : Infinity;
  return text === 'NaN' ? Number.NaN : Number(text);
}

/** Each histogram series has a `+Inf` bucket equal to its `_count`, and cumulative buckets. */
function checkHistogram(family: Family): void {
  if (family.type !== 'histogram') return;
  const series = new Map<string, { buckets: number[]; inf?: number; count?: number }>();
  for (const sample of family.samples) {
    const { le, ...rest } = sample.labels;
    const key = JSON.stringify(Object.entries(rest).sort());
    const entry = series.get(key) ?? { buckets: [] };
    series.set(key, entry);
    if (sample.name.endsWith('_bucket')) {
      if (le === undefined) throw new Error(`${family.name}: bucket without le`);
      if (le === '+Inf') entry.inf = sample.value;
      entry.buckets.push(sample.value);
    } else if (sample.name.endsWith('_count')) {
      entry.count = sample.value;
    }
  }
  for (const [key, entry] of series) {
    if (entry.inf === undefined || entry.inf !== entry.count) {
      throw new Error(`${family.name}${key}: +Inf bucket ${entry.inf} != count ${entry.count}`);
    }
    entry.buckets.forEach((value, i) => {
      if (i > 0 && value < (entry.buckets[i - 1] as number)) {
        throw new Error(`${family.name}${key}: buckets are not cumulative`);
      }
    });
  }
}

/** The value of the sample `name` whose labels include `labels`, or `undefined`. */
export function sampleValue(
  families: Map<string, Family>,
  name: string,
  labels: Record<string, string> = {},
): number | undefined {
  for (const family of families.values()) {
    for (const sample of family.samples) {
      if (sample.name !== name) continue;
      if (Object.entries(labels).every(([k, v]) => sample.labels[k] === v)) return sample.value;
    }
  }
  return undefined;
}

/**
 * The server extension's REST API (`nbdistill/server/handlers.py`), typed.
 */
import { URLExt } from '@jupyterlab/coreutils';
import { ServerConnection } from '@jupyterlab/services';

/**
 * `lost`: `run.json` says running but its writer is gone; `corrupt`: the run cannot be read (the
 * reason is its `error`; `family` and `method` may then be `null`).
 */
export type RunStatus = 'running' | 'finished' | 'stopped' | 'failed' | 'lost' | 'corrupt';

export interface RunSummary {
  id: string;
  family: string | null;
  method: string | null;
  status: RunStatus;
  error: string | null;
  started: number | null;
  ended: number | null;
  /** For a running run: whether its process is alive (`null`: unknown, e.g. another host). */
  alive: boolean | null;
  stop_requested: boolean;
  step: number;
  epoch: number;
  /** Time of the last event (Unix seconds). */
  updated: number | null;
  /** Number of events so far. */
  events: number;
  /** The last value of every scalar. */
  metrics: Record<string, number | null>;
  /** The scalar the sparkline shows (`train/loss` if there is one). */
  main: string | null;
  spark: number[];
  /** Lines and fields of `events.jsonl` (and fields of `run.json`) left out for having the wrong type. */
  skipped?: number;
}

export interface RunsReply {
  root: string;
  /** The server's clock (Unix seconds) when it answered. */
  time: number;
  runs: RunSummary[];
}

/** What `run.json`'s `setting` holds (see `nbdistill.core.setting`); every part optional. */
export interface RunSetting {
  student?: { class?: string; params?: number };
  teachers?: { class?: string; params?: number }[];
  data?: { class?: string; batch_size?: number; n_train?: number | null; sizes?: Record<string, number> };
  error?: string;
}

export interface RunInfo extends RunSummary {
  hparams: Record<string, unknown>;
  /** What was trained (student, teachers, data); absent in runs from before it was recorded. */
  setting?: RunSetting;
  versions?: Record<string, string>;
  traceback?: string;
  time: number;
}

export interface EventsPage {
  events: unknown[];
  /** Where the next read starts. */
  offset: number;
  /** Size of `events.jsonl` when it was read. */
  size: number;
  /** Lines and fields of this page left out for having the wrong type. */
  skipped?: number;
}

export interface Tutorial {
  name: string;
  title: string;
  file: string;
}

export class ApiError extends Error {
  constructor(
    message: string,
    readonly status: number
  ) {
    super(message);
  }
}

const settings = ServerConnection.makeSettings();

async function request(path: string, init: RequestInit = {}): Promise<Response> {
  const url = URLExt.join(settings.baseUrl, 'nbdistill', 'api', path);
  let response: Response;
  try {
    response = await ServerConnection.makeRequest(url, init, settings);
  } catch (error) {
    throw new ServerConnection.NetworkError(error as TypeError);
  }
  if (!response.ok) {
    let message = response.statusText;
    try {
      message = (await response.json()).message ?? message;
    } catch {
      // not JSON: keep the status text
    }
    throw new ApiError(message, response.status);
  }
  return response;
}

async function json<T>(path: string, init: RequestInit = {}): Promise<T> {
  return (await request(path, init)).json() as Promise<T>;
}

const runPath = (id: string, ...rest: string[]): string => ['runs', encodeURIComponent(id), ...rest].join('/');

export const api = {
  runs: (): Promise<RunsReply> => json('runs'),
  run: (id: string): Promise<RunInfo> => json(runPath(id)),
  events: (id: string, offset: number): Promise<EventsPage> => json(`${runPath(id, 'events')}?offset=${offset}`),
  stop: (id: string): Promise<RunSummary> => json(runPath(id, 'stop'), { method: 'POST', body: '{}' }),
  plot: async (id: string): Promise<Blob> => (await request(runPath(id, 'plot.png'))).blob(),
  media: async (id: string, path: string): Promise<Blob> => {
    const rel = path.replace(/^media\//, '').split('/').map(encodeURIComponent).join('/');
    return (await request(runPath(id, 'media', rel))).blob();
  },
  tutorials: async (): Promise<Tutorial[]> => (await json<{ tutorials: Tutorial[] }>('tutorials')).tutorials,
  copyTutorial: (name: string, dir: string): Promise<{ path: string; created: boolean }> =>
    json(`tutorials/${encodeURIComponent(name)}/copy`, { method: 'POST', body: JSON.stringify({ dir }) })
};

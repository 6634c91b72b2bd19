// The local pipeline's settings (flags over LOCAL_DIR, PORT, LOCAL_CAPACITY and the others), for the
// commands that read them: a bad one is a SettingsError, one line, not a crash with a stack. It loads
// the local pipeline: commands import it when they run it or write into its folder, not before.
import { localSettings, type LocalSettings } from '@pipeline/dispatcher/local/main.ts';
import { SettingsError } from './errors.ts';

export function localSettingsOf(env: NodeJS.ProcessEnv, flags: Partial<LocalSettings> = {}): LocalSettings {
  try {
    return localSettings(env, flags);
  } catch (err) {
    // localSettings only validates: whatever it throws is about a setting.
    throw new SettingsError((err as Error).message, { cause: err });
  }
}

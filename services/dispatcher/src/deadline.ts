// A bound on a call whose own client may retry for minutes (the Storage client does): the caller
// gets `late()` once `ms` passed without an answer. The call itself is not cancelled; its answer, if
// it ever comes, is ignored.
export async function withinDeadline<T>(work: Promise<T>, ms: number, late: () => T): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<T>((resolve, reject) => {
    timer = setTimeout(() => {
      try {
        resolve(late());
      } catch (err) {
        reject(err as Error);
      }
    }, ms);
  });
  try {
    return await Promise.race([work, deadline]);
  } finally {
    clearTimeout(timer);
  }
}

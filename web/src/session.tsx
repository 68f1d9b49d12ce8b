// Who is signed in: restored on load through the refresh cookie, then /auth/me. Pages read it with useSession().
import { createContext, useCallback, useContext, useEffect, useMemo, useState, type ReactNode } from 'react';
import * as auth from './api/auth';
import { api, must } from './api/client';
import type { Me } from './api/types';

interface Session {
  /** undefined while the session is being restored. */
  me: Me | null | undefined;
  isAdmin: boolean;
  isPlatformAdmin: boolean;
  login(email: string, password: string): Promise<void>;
  signup(input: { email: string; password: string; tenant_name: string; full_name?: string }): Promise<void>;
  logout(): Promise<void>;
}

const SessionContext = createContext<Session | null>(null);

async function loadMe(): Promise<Me> {
  return must(api.GET('/api/v1/auth/me'));
}

export function SessionProvider({ children }: { children: ReactNode }) {
  const [me, setMe] = useState<Me | null | undefined>(undefined);

  useEffect(() => {
    let live = true;
    void (async () => {
      const ok = await auth.refresh();
      const who = ok ? await loadMe().catch(() => null) : null;
      if (live) setMe(who);
    })();
    // A refresh that fails mid-session (revoked, expired) signs the page out.
    const off = auth.onSessionChange((signedIn) => {
      if (!signedIn) setMe(null);
    });
    return () => {
      live = false;
      off();
    };
  }, []);

  const login = useCallback(async (email: string, password: string) => {
    await auth.login(email, password);
    setMe(await loadMe());
  }, []);
  const signup = useCallback(async (input: Parameters<Session['signup']>[0]) => {
    await auth.signup(input);
    setMe(await loadMe());
  }, []);
  const logout = useCallback(async () => {
    await auth.logout().catch(() => undefined);
    setMe(null);
  }, []);

  const value = useMemo<Session>(
    () => ({
      me,
      isAdmin: me?.user.role === 'admin',
      isPlatformAdmin: me?.user.is_platform_admin === true,
      login,
      signup,
      logout,
    }),
    [me, login, signup, logout],
  );
  return <SessionContext.Provider value={value}>{children}</SessionContext.Provider>;
}

export function useSession(): Session {
  const s = useContext(SessionContext);
  if (!s) throw new Error('useSession outside SessionProvider');
  return s;
}

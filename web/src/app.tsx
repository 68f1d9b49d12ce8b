// The app shell (header, navigation, burger menu at phone width, light/dark switch) around the routed pages, or the
// sign-in pages when nobody is signed in.
import {
  ActionIcon,
  AppShell,
  Burger,
  Button,
  Group,
  NavLink,
  ScrollArea,
  Text,
  Title,
  Tooltip,
  useComputedColorScheme,
  useMantineColorScheme,
} from '@mantine/core';
import { useDisclosure } from '@mantine/hooks';
import { Suspense } from 'react';
import { Navigate, NavLink as RouterLink, Route, Routes, useLocation } from 'react-router';
import { ErrorBoundary } from './components/error-boundary';
import { Loading } from './components/status';
import { AuthPage } from './pages/auth-page';
import { pages, type PageRoute } from './routes';
import { useSession } from './session';

export function App() {
  const { me } = useSession();
  if (me === undefined) return <Loading label="Restoring your session" />;
  if (me === null) {
    return (
      <Routes>
        <Route path="/login" element={<AuthPage mode="login" />} />
        <Route path="/signup" element={<AuthPage mode="signup" />} />
        <Route path="*" element={<Navigate to="/login" replace />} />
      </Routes>
    );
  }
  return <Shell />;
}

function ThemeToggle() {
  const { setColorScheme } = useMantineColorScheme();
  const scheme = useComputedColorScheme('light');
  const next = scheme === 'dark' ? 'light' : 'dark';
  return (
    <Tooltip label={`Switch to ${next} theme`}>
      <ActionIcon variant="default" size="lg" aria-label={`Switch to ${next} theme`} onClick={() => setColorScheme(next)}>
        <span aria-hidden="true">{scheme === 'dark' ? '☀' : '☾'}</span>
      </ActionIcon>
    </Tooltip>
  );
}

function Shell() {
  const { me, isAdmin, isPlatformAdmin, logout } = useSession();
  const [opened, { toggle, close }] = useDisclosure();
  const location = useLocation();
  const allowed = (p: PageRoute) =>
    p.access === 'user' || (p.access === 'admin' && isAdmin) || (p.access === 'platform_admin' && isPlatformAdmin);
  const visible = pages.filter(allowed);

  return (
    <AppShell header={{ height: 56 }} navbar={{ width: 220, breakpoint: 'sm', collapsed: { mobile: !opened } }} padding="md">
      <AppShell.Header>
        <Group h="100%" px="md" justify="space-between" wrap="nowrap">
          <Group gap="sm" wrap="nowrap">
            <Burger opened={opened} onClick={toggle} hiddenFrom="sm" size="sm" aria-label="Toggle navigation" />
            <Title order={1} size="h4">
              Voice Agent
            </Title>
            <Text size="sm" c="dimmed" visibleFrom="xs" truncate maw={240}>
              {me?.tenant.name}
            </Text>
          </Group>
          <Group gap="xs" wrap="nowrap">
            <ThemeToggle />
            <Button variant="default" size="xs" onClick={() => void logout()}>
              Log out
            </Button>
          </Group>
        </Group>
      </AppShell.Header>
      <AppShell.Navbar p="xs" aria-label="Main">
        <ScrollArea>
          {visible
            .filter((p) => p.nav)
            .map((p) => (
              <NavLink
                key={p.path}
                component={RouterLink}
                to={p.path}
                label={p.label}
                active={location.pathname === p.path || location.pathname.startsWith(`${p.path}/`)}
                onClick={close}
              />
            ))}
          <Text size="xs" c="dimmed" px="sm" pt="md" truncate>
            {me?.user.email}
          </Text>
        </ScrollArea>
      </AppShell.Navbar>
      <AppShell.Main>
        <ErrorBoundary key={location.pathname}>
          <Suspense fallback={<Loading />}>
            <Routes>
              {visible.map((p) => (
                <Route key={p.path} path={p.path} element={<p.component />} />
              ))}
              <Route path="/login" element={<Navigate to="/agent" replace />} />
              <Route path="/signup" element={<Navigate to="/agent" replace />} />
              <Route path="/" element={<Navigate to="/agent" replace />} />
              <Route path="*" element={<NotFound />} />
            </Routes>
          </Suspense>
        </ErrorBoundary>
      </AppShell.Main>
    </AppShell>
  );
}

function NotFound() {
  return (
    <Text>
      This page does not exist.{' '}
      <Text component={RouterLink} to="/agent" c="indigo">
        Go to your agent
      </Text>
    </Text>
  );
}
